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
    path("invoices/<uuid:pk>/pay/", views.InvoicePayView.as_view(), name="invoice-pay"),
    path("payments/", views.PaymentListView.as_view(), name="payments"),
    path("payments/top-up/", views.TopUpView.as_view(), name="topup"),
    path("payments/<uuid:pk>/", views.PaymentDetailView.as_view(), name="payment-detail"),
    path("payments/webhook/<str:provider>/", views.payment_webhook, name="payment-webhook"),
    path("pay/test/<str:token>/", views.TestCheckoutView.as_view(), name="test-checkout"),
    path("pay/test/<str:token>/confirm/", views.TestConfirmView.as_view(), name="test-confirm"),
]
