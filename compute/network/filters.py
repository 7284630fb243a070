"""The filters of the networking lists, shared by the dashboard and the API (labels, names)."""

import django_filters

from compute.network.models import Firewall, Network, PublicIP
from portal.api.filters import LabelledFilterSet


class NetworkFilter(LabelledFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name, any case.")

    class Meta:
        model = Network
        fields = ["label", "name"]


class FirewallFilter(LabelledFilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name, any case.")

    class Meta:
        model = Firewall
        fields = ["label", "name"]


class PublicIPFilter(LabelledFilterSet):
    class Meta:
        model = PublicIP
        fields = ["label"]
