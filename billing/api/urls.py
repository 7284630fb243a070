from django.urls import path

from billing.api import views

routes = [
    ("invoices", views.InvoiceViewSet, "invoice"),
    ("payments", views.PaymentViewSet, "payment"),
]

urlpatterns = [
    path("usage/", views.UsageView.as_view(), name="usage"),
]
