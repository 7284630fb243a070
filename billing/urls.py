from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("invoices/", views.InvoiceListView.as_view(), name="invoices"),
    path("invoices/<uuid:pk>/", views.InvoiceDetailView.as_view(), name="invoice-detail"),
    path("invoices/<uuid:pk>/pdf/", views.InvoicePdfView.as_view(), name="invoice-pdf"),
    path("invoices/<uuid:pk>/csv/", views.InvoiceCsvView.as_view(), name="invoice-csv"),
    path("credits/", views.CreditsView.as_view(), name="credits"),
    path("budget/", views.BudgetView.as_view(), name="budget"),
    path("details/", views.BillingDetailsView.as_view(), name="details"),
]
