import django_filters

from portal.api.filters import IntegerFilter, StrictFilterSet
from tenants.models import ActivityEntry


class ActivityEntryFilter(StrictFilterSet):
    actor = IntegerFilter(field_name="actor_id", help_text="The acting user's id.")
    actor_email = django_filters.CharFilter(lookup_expr="iexact", help_text="The acting user's e-mail address.")
    token = django_filters.UUIDFilter(field_name="token_id", help_text="Entries made with this API token.")
    resource_type = django_filters.MultipleChoiceFilter(choices=ActivityEntry.ResourceType.choices)
    resource_id = django_filters.CharFilter(help_text="e.g. an instance's id.")
    action = django_filters.CharFilter(help_text="e.g. `launch`, `role_change`.")
    channel = django_filters.MultipleChoiceFilter(choices=ActivityEntry.Channel.choices)
    outcome = django_filters.MultipleChoiceFilter(choices=ActivityEntry.Outcome.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = ActivityEntry
        fields = [
            "actor",
            "actor_email",
            "token",
            "resource_type",
            "resource_id",
            "action",
            "channel",
            "outcome",
            "created_after",
            "created_before",
        ]
