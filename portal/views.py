import logging
from pathlib import Path

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from portal.celery import app as celery_app
from portal.tasks import HEARTBEAT_KEY, HEARTBEAT_STALE_AFTER

logger = logging.getLogger(__name__)


@login_not_required
def admin_login(request):
    """The admin's log-in page sends operators to the site's own, which has the second step."""
    if request.user.is_authenticated:
        if request.user.is_staff:
            return redirect("admin:index")
        raise PermissionDenied("The operator admin is for Hangar's operators.")
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))


class HomeView(TemplateView):
    template_name = "portal/home.html"

    def get_context_data(self, **kwargs):
        from portal.summary import tenant_summary

        context = super().get_context_data(**kwargs)
        if self.request.tenant is not None:
            context["summary"] = tenant_summary(tenant=self.request.tenant, membership=self.request.membership)
        return context


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # write-ok: a read: the health check
            cursor.fetchone()
    except Exception as error:  # any driver error means "down"; the reason goes to the log and the body
        logger.warning("health check: database unavailable: %s", error)
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "vendor": connection.vendor}


def _check_broker() -> dict:
    transport = celery_app.conf.broker_url.split("://", 1)[0]
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            if transport == "filesystem":
                # The embedded broker "connects" to a folder: make sure it can actually be written.
                _check_broker_folder()
    except Exception as error:
        logger.warning("health check: broker unavailable: %s", error)
        return {"ok": False, "transport": transport, "error": type(error).__name__}
    return {"ok": True, "transport": transport}


def _check_broker_folder() -> None:
    options = celery_app.conf.broker_transport_options
    folder = Path(options["data_folder_in"])
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".healthz"
    probe.write_text("ok")
    probe.unlink()


def _check_worker() -> dict:
    last_seen = cache.get(HEARTBEAT_KEY)
    if last_seen is None:
        return {"ok": False, "last_seen": None}
    age = (timezone.now() - last_seen).total_seconds()
    return {"ok": age <= HEARTBEAT_STALE_AFTER, "last_seen": last_seen.isoformat(), "age_seconds": round(age)}


@never_cache
@login_not_required
def healthz(request):
    """Database and broker status for load balancers: 503 if either is down. The worker is reported, not required."""
    checks = {"database": _check_database(), "broker": _check_broker(), "worker": _check_worker()}
    healthy = checks["database"]["ok"] and checks["broker"]["ok"]
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )
