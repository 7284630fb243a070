"""The filters of the volume and snapshot lists, shared by the dashboard and the API."""

import django_filters

from compute.storage.models import Snapshot, SnapshotState, Volume, VolumeState
from portal.api.filters import BooleanFilter, LabelledFilterSet, StableOrderingFilter


class VolumeFilter(LabelledFilterSet):
    state = django_filters.MultipleChoiceFilter(
        choices=VolumeState.choices, help_text="One or more states, e.g. `?state=available&state=in-use`."
    )
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name, any case.")
    instance = django_filters.UUIDFilter(field_name="instance_id", help_text="Attached to this machine.")
    attached = BooleanFilter(
        field_name="instance", lookup_expr="isnull", exclude=True, help_text="`true`: attached ones only."
    )
    ordering = StableOrderingFilter(
        fields=(("name", "name"), ("state", "state"), ("size_gib", "size"), ("created_at", "created")),
        help_text="Comma-separated; prefix `-` for descending. Default: `-created`.",
    )

    class Meta:
        model = Volume
        fields = ["label", "state", "name", "instance", "attached"]


class SnapshotFilter(LabelledFilterSet):
    state = django_filters.MultipleChoiceFilter(choices=SnapshotState.choices)
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name, any case.")
    volume = django_filters.UUIDFilter(field_name="source_volume_id", help_text="Taken of this volume.")
    ordering = StableOrderingFilter(
        fields=(("name", "name"), ("state", "state"), ("size_gib", "size"), ("created_at", "created")),
        help_text="Comma-separated; prefix `-` for descending. Default: `-created`.",
    )

    class Meta:
        model = Snapshot
        fields = ["label", "state", "name", "volume"]
