"""The filters of the instance list and the catalog: one FilterSet per list, shared by the dashboard and the API.

The dashboard dresses the form of InstanceFilter for its filter bar (compute.views); what a value means, and which
values are refused, is decided here once for both.
"""

import django_filters

from compute.models import Flavor, Image, Instance, InstanceState, SSHKey
from portal.api.filters import IntegerFilter, LabelledFilterSet, StableOrderingFilter, StrictFilterSet


class InstanceFilter(LabelledFilterSet):
    state = django_filters.MultipleChoiceFilter(
        choices=InstanceState.choices, help_text="One or more states, e.g. `?state=running&state=stopped`."
    )
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name, any case.")
    flavor = django_filters.UUIDFilter(field_name="flavor_id")
    image = django_filters.UUIDFilter(field_name="image_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = StableOrderingFilter(
        fields=(
            ("name", "name"),
            ("state", "state"),
            ("created_at", "created"),
            ("flavor__name", "flavor"),
            ("image__name", "image"),
        ),
        help_text="Comma-separated; prefix `-` for descending. Default: `-created`.",
    )

    class Meta:
        model = Instance
        fields = ["state", "name", "flavor", "image", "label", "created_after", "created_before"]


class SSHKeyFilter(LabelledFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name, any case.")

    class Meta:
        model = SSHKey
        fields = ["label", "name"]


class FlavorFilter(StrictFilterSet):
    vcpus = IntegerFilter(help_text="Exactly this many vCPUs.")
    ordering = StableOrderingFilter(
        fields=(("name", "name"), ("vcpus", "vcpus"), ("ram_mib", "ram_mib"), ("monthly_price", "price"))
    )

    class Meta:
        model = Flavor
        fields = ["vcpus"]


class ImageFilter(StrictFilterSet):
    os = django_filters.CharFilter(lookup_expr="iexact", help_text="Operating system, e.g. `Debian`.")
    ordering = StableOrderingFilter(fields=(("name", "name"), ("os", "os"), ("version", "version")))

    class Meta:
        model = Image
        fields = ["os"]
