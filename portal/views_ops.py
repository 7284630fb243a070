"""The operations overview: one staff-only page that answers "is anything wrong, and where?" at a glance.

It reads each app's own selectors (capacity per region and host, machines in trouble, organisations on hold, failed
work, revenue) and the queue and workers; it changes nothing. The query count does not grow with the rows.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.http import HttpResponseServerError
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.csrf import requires_csrf_token

from billing.selectors import revenue_overview
from compute.selectors import (
    failed_events,
    hosts_by_region,
    instance_state_counts,
    instances_in_trouble,
    open_orphan_count,
)
from portal.api.exceptions import server_error_answer
from portal.logging import current_request_id
from portal.queue import queue_depth, worker_heartbeat_or_unknown
from tenants.selectors import tenants_not_active

# More waiting messages than this reads as a backlog.
QUEUE_BACKLOG = 50


def overview(request):
    now = timezone.now()
    regions = hosts_by_region()
    trouble, trouble_count = instances_in_trouble(now=now)
    failed, failed_count = failed_events(since=now - timedelta(hours=24))
    standing = list(tenants_not_active()[:20])
    depth = queue_depth()
    heartbeat = worker_heartbeat_or_unknown()
    schedulable = sum(usage.host.schedulable for _, usages in regions for usage in usages)
    checks = [
        ("Hosts taking machines", schedulable, schedulable > 0),
        ("Machines in trouble", trouble_count, trouble_count == 0),
        ("Failed work (24 h)", failed_count, failed_count == 0),
        ("Organisations on hold or suspended", len(standing), not standing),
        ("Unknown domains on hosts", open_orphan_count(), None),
        ("Queue depth", "unknown" if depth is None else depth, depth is not None and depth < QUEUE_BACKLOG),
        ("Worker heartbeat", "alive" if heartbeat.ok else "stale" if heartbeat.last_seen else "none", heartbeat.ok),
    ]  # fmt: skip
    checks = [(label, value, ok if ok is not None else value == 0) for label, value, ok in checks]
    context = {
        **admin.site.each_context(request),
        "title": "Operations overview",
        "checks": checks,
        "all_ok": all(ok for _, _, ok in checks),
        "regions": regions,
        "states": instance_state_counts(),
        "trouble": trouble,
        "trouble_count": trouble_count,
        "failed": failed,
        "failed_count": failed_count,
        "standing": standing,
        "revenue": revenue_overview(now=now),
        "currency": settings.BILLING_CURRENCY,
        "queue_depth": depth,
        "heartbeat": heartbeat,
        "now": now,
    }
    return TemplateResponse(request, "admin/overview.html", context)


@requires_csrf_token
def server_error(request, template_name: str = "500.html"):
    """handler500: Django's own renders without the request; this one shows its id, to quote to support. Under /api/
    the answer is the API's error shape."""
    if (answer := server_error_answer(request)) is not None:
        return answer
    # Rendered without the request, so no context processor touches the database: the page works while it is away.
    return HttpResponseServerError(render_to_string(template_name, {"request_id": current_request_id()}))
