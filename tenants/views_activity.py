"""The organisation's activity log: a filtered, paginated page for owners and admins, and its CSV export."""

import csv
from datetime import UTC

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.views.generic import ListView

from tenants.filters import ActivityFilter
from tenants.models import ActivityEntry
from tenants.roles import Permission
from tenants.scoping import TenantScopedMixin
from tenants.selectors import activity_entries

CSV_COLUMNS = [
    "time (UTC)",
    "actor",
    "token",
    "channel",
    "ip_address",
    "resource_type",
    "resource_id",
    "resource_name",
    "action",
    "outcome",
    "message",
]


class ActivityMixin(TenantScopedMixin):
    model = ActivityEntry
    view_permission = Permission.VIEW_ACTIVITY
    change_permission = Permission.VIEW_ACTIVITY

    def get_filter(self) -> ActivityFilter:
        if not hasattr(self, "_filter"):
            tenant = self.request.tenant
            self._filter = ActivityFilter(self.request.GET, queryset=activity_entries(tenant=tenant), tenant=tenant)
        return self._filter

    def get_queryset(self):
        activity = self.get_filter()
        return activity.qs if activity.is_valid() else activity.queryset.none()


class ActivityView(ActivityMixin, ListView):
    template_name = "tenants/activity.html"
    context_object_name = "entries"
    paginate_by = 50

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            filter=self.get_filter(), retention_days=settings.ACTIVITY_RETENTION_DAYS, **kwargs
        )


def _cell(value) -> str:
    """Spreadsheets run a cell that starts with = + - or @ as a formula: such text is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value):
        return value


class ActivityExportView(ActivityMixin, ListView):
    """The same filters as the page, every matching entry, streamed as CSV."""

    def render_to_response(self, context, **response_kwargs):
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(CSV_COLUMNS)
            for entry in self.object_list.iterator(chunk_size=2000):
                yield writer.writerow(
                    [
                        entry.created_at.astimezone(UTC).isoformat(),
                        _cell(entry.actor_email or "Hangar"),
                        _cell(entry.token_name),
                        entry.channel,
                        entry.ip_address or "",
                        entry.resource_type,
                        _cell(entry.resource_id),
                        _cell(entry.resource_name),
                        _cell(entry.action),
                        entry.outcome,
                        _cell(entry.message),
                    ]
                )

        name = f"activity-{timezone.now():%Y%m%d-%H%M}.csv"
        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
