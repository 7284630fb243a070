"""The activity page's filters: person, resource, where from, outcome and dates."""

import django_filters
from django import forms
from django.db.models import Q

from tenants.models import ActivityEntry
from tenants.selectors import activity_actors

SYSTEM = "system"


class ActivityFilter(django_filters.FilterSet):
    actor = django_filters.ChoiceFilter(label="Person", method="filter_actor", empty_label="Anyone")
    resource_type = django_filters.ChoiceFilter(
        label="Resource", choices=ActivityEntry.ResourceType.choices, empty_label="Any resource"
    )
    resource = django_filters.CharFilter(
        label="Name or ID", method="filter_resource", widget=forms.TextInput(attrs={"placeholder": "web-1"})
    )
    channel = django_filters.ChoiceFilter(label="From", choices=ActivityEntry.Channel.choices, empty_label="Anywhere")
    outcome = django_filters.ChoiceFilter(choices=ActivityEntry.Outcome.choices, empty_label="Any outcome")
    since = django_filters.DateFilter(
        label="From date", field_name="created_at", lookup_expr="date__gte", widget=forms.DateInput({"type": "date"})
    )
    until = django_filters.DateFilter(
        label="To date", field_name="created_at", lookup_expr="date__lte", widget=forms.DateInput({"type": "date"})
    )

    class Meta:
        model = ActivityEntry
        fields = ["actor", "resource_type", "resource", "channel", "outcome", "since", "until"]

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        people = [(str(user.pk), user.email) for user in activity_actors(tenant=tenant)]
        self.filters["actor"].extra["choices"] = [*people, (SYSTEM, "Hangar (automatic)")]

    def filter_actor(self, queryset, name, value):
        if value == SYSTEM:
            return queryset.filter(actor_email="")
        return queryset.filter(actor_id=value)

    def filter_resource(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(resource_name__icontains=value) | Q(resource_id=value)) if value else queryset
