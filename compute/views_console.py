"""The serial console panel of the instance detail page: an htmx partial that re-fetches itself every few seconds."""

from django.http import JsonResponse
from django.views.generic import DetailView, View
from django.views.generic.detail import SingleObjectMixin

from compute.console import MAX_CONSOLE_LINES, instance_console_output
from compute.console.sessions import console_ticket
from compute.drivers.base import DriverError
from compute.models import Instance, InstanceState
from compute.services import instance_console_opened
from tenants.scoping import TenantScopedMixin

DEFAULT_LINES = 100
FAST_REFRESH_SECONDS = 3  # running or changing state: the console is likely moving
SLOW_REFRESH_SECONDS = 15  # stopped or failed: output changes only when someone starts it


class InstanceConsoleView(TenantScopedMixin, DetailView):
    """GET only: the last lines of the instance's serial console (read-only), for anyone who may view it."""

    model = Instance
    template_name = "compute/partials/console.html"
    context_object_name = "instance"
    http_method_names = ["get", "head", "options"]

    def get_queryset(self):
        return super().get_queryset().select_related("host")

    def _lines(self) -> int:
        try:
            return min(max(int(self.request.GET.get("lines", DEFAULT_LINES)), 1), MAX_CONSOLE_LINES)
        except ValueError:
            return DEFAULT_LINES

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        instance = self.object
        console, error = "", ""
        try:
            console = instance_console_output(instance=instance, lines=self._lines())
        except DriverError as driver_error:
            error = str(driver_error)
        active = instance.is_transitional or instance.state == InstanceState.RUNNING
        context.update(
            console=console,
            console_error=error,
            console_loaded=True,
            refresh_seconds=FAST_REFRESH_SECONDS if active else SLOW_REFRESH_SECONDS,
        )
        return context


class InstanceConsoleTicketView(TenantScopedMixin, SingleObjectMixin, View):
    """POST: a one-minute ticket for the interactive console's WebSocket, for members who may act on the machine."""

    model = Instance
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        instance = self.get_object()
        instance_console_opened(instance=instance, user=request.user)
        return JsonResponse(
            {
                "url": f"/ws/instances/{instance.pk}/console/",
                "ticket": console_ticket(instance=instance, user=request.user),
            }
        )
