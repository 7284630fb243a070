import logging
import os
import threading
from pathlib import Path

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import cache_control, never_cache
from django.views.generic import TemplateView

from portal.celery import app as celery_app
from portal.queue import worker_heartbeat

logger = logging.getLogger(__name__)


@login_not_required
@cache_control(max_age=86400, public=True)
def favicon(request):
    """/favicon.ico, which browsers and crawlers ask for whatever the page says: the fingerprinted icon."""
    return redirect(static("img/favicon.ico"))


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
    # A name of its own: checks running at once in several web workers must not remove each other's probe.
    probe = folder / f".healthz-{os.getpid()}-{threading.get_ident()}"
    probe.write_text("ok")
    probe.unlink()


def _check_cache_and_worker() -> tuple[dict, dict]:
    """The shared cache (rate-limit counters, the heartbeat), and the worker as its last heartbeat there says."""
    try:
        heartbeat = worker_heartbeat()
    except Exception as error:  # any backend failure (Redis refused or timed out) means "down"
        logger.warning("health check: cache unavailable: %s", error)
        unknown = {"ok": False, "last_seen": None, "error": "unknown while the cache is unavailable"}
        return {"ok": False, "error": type(error).__name__}, unknown
    if heartbeat.last_seen is None:
        return {"ok": True}, {"ok": False, "last_seen": None}
    worker = {
        "ok": heartbeat.ok,
        "last_seen": heartbeat.last_seen.isoformat(),
        "age_seconds": round(heartbeat.age_seconds),
    }
    return {"ok": True}, worker


# Without these the portal cannot serve its users; the worker is reported, not required (work waits in the queue).
REQUIRED = ("database", "broker", "cache")


@never_cache
@login_not_required
def healthz(request):
    """Database, broker and cache status for load balancers, always as JSON: 503 naming what is down."""
    cache_check, worker_check = _check_cache_and_worker()
    checks = {"database": _check_database(), "broker": _check_broker(), "cache": cache_check, "worker": worker_check}
    down = [name for name in REQUIRED if not checks[name]["ok"]]
    body = {"status": "unavailable" if down else "ok", "down": down, "checks": checks}
    return JsonResponse(body, status=503 if down else 200)
