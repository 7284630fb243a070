"""Networking endpoints: private networks, public IPv4 addresses and firewalls.

Every write calls the same services as the dashboard (compute.network.services); nothing here decides a rule.
Creating and changing these is immediate in Hangar; the hosts follow within seconds (host syncs after commit).
"""

from django.db.models import Count, Prefetch
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from compute.api.serializers import LabelsUpdateSerializer
from compute.network import services
from compute.network.api import serializers as s
from compute.network.filters import FirewallFilter, NetworkFilter, PublicIPFilter
from compute.network.models import Firewall, FirewallRule, Network, PublicIP
from compute.services import resource_labels_set
from portal.api.views import TenantViewSet

EXAMPLE_RULES = [
    {"direction": "in", "protocol": "tcp", "port_min": 22, "port_max": 22, "cidr": "0.0.0.0/0", "description": "SSH"},
    {"direction": "in", "protocol": "tcp", "port_min": 443, "port_max": 443, "cidr": "0.0.0.0/0", "description": ""},
    {"direction": "out", "protocol": "any", "port_min": None, "port_max": None, "cidr": "0.0.0.0/0", "description": ""},
]


@extend_schema_view(
    list=extend_schema(summary="List your private networks (the default one first)", tags=["networks"]),
    retrieve=extend_schema(summary="One network", tags=["networks"]),
    destroy=extend_schema(
        summary="Delete a network",
        description="Only a network no machine uses; the default network cannot be deleted (409).",
        tags=["networks"],
    ),
)
class NetworkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    queryset = (
        Network.objects.select_related("region")
        .annotate(machine_count=Count("ports"))
        .order_by("-is_default", "name", "id")
    )
    serializer_class = s.NetworkSerializer
    filterset_class = NetworkFilter

    @extend_schema(
        summary="Create a private network",
        description="An RFC 1918 range from /16 to /28 that overlaps none of your networks. Machines join it at "
        "launch (`networks` of POST /instances/); the first usable address is the gateway.",
        tags=["networks"],
        request=s.NetworkCreateSerializer,
        responses={201: s.NetworkSerializer},
        examples=[OpenApiExample("backend", request_only=True, value={"name": "backend", "cidr": "10.20.0.0/24"})],
    )
    def create(self, request):
        data = self.validated(s.NetworkCreateSerializer, request.data)
        network = services.network_create(tenant=request.tenant, user=request.user, **data)
        network.machine_count = 0
        return self.created(network, s.NetworkSerializer)

    @extend_schema(
        summary="Rename a network or change its labels",
        tags=["networks"],
        request=s.NetworkUpdateSerializer,
        responses={200: s.NetworkSerializer},
    )
    def partial_update(self, request, pk=None):
        network = self.get_object()
        data = self.validated(s.NetworkUpdateSerializer, request.data)
        if "name" in data:
            network = services.network_rename(network=network, user=request.user, name=data["name"])
        if "labels" in data:
            network = resource_labels_set(resource=network, user=request.user, labels=data["labels"])
        return Response(s.NetworkSerializer(self.get_queryset().get(pk=network.pk)).data)

    def perform_destroy(self, instance):
        services.network_delete(network=instance, user=self.request.user)


IP_ACCEPTED = OpenApiResponse(
    s.PublicIPSerializer,
    description="Accepted: the address is assigned (or unassigned) now; the host's 1:1 NAT follows within seconds.",
)


@extend_schema_view(
    list=extend_schema(summary="List the public IPv4 addresses you hold", tags=["ips"]),
    retrieve=extend_schema(summary="One public IPv4 address", tags=["ips"]),
    destroy=extend_schema(
        summary="Release a public IPv4 address",
        description="It goes back to the pool and billing for it stops now; if it was assigned, it is unmapped.",
        tags=["ips"],
    ),
)
class PublicIPViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    queryset = PublicIP.objects.held().select_related("pool__region").order_by("-allocated_at", "id")
    serializer_class = s.PublicIPSerializer
    filterset_class = PublicIPFilter

    @extend_schema(
        summary="Allocate a public IPv4 address",
        description="Takes a free address from the provider's pools, billed per started hour (assigned or not) "
        "until released, at most the monthly price per month. 422 `pool_exhausted` when none is free, "
        "`quota_exceeded` beyond your `public_ips` quota.",
        tags=["ips"],
        request=s.PublicIPCreateSerializer,
        responses={201: s.PublicIPSerializer},
        examples=[
            OpenApiExample("allocate", request_only=True, value={}),
            OpenApiExample(
                "allocate and assign", request_only=True, value={"instance": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10"}
            ),
        ],
    )
    def create(self, request):
        data = self.validated(s.PublicIPCreateSerializer, request.data)
        public_ip = services.public_ip_allocate(
            tenant=request.tenant,
            user=request.user,
            instance=data.get("instance"),
            region=data.get("region"),
            labels=data["labels"],
        )
        return self.created(public_ip, s.PublicIPSerializer)

    @extend_schema(
        summary="Change the labels of a public IPv4 address",
        tags=["ips"],
        request=LabelsUpdateSerializer,
        responses={200: s.PublicIPSerializer},
    )
    def partial_update(self, request, pk=None):
        public_ip = self.get_object()
        data = self.validated(LabelsUpdateSerializer, request.data)
        resource_labels_set(resource=public_ip, user=request.user, labels=data["labels"])
        return Response(s.PublicIPSerializer(self.get_queryset().get(pk=public_ip.pk)).data)

    def perform_destroy(self, instance):
        services.public_ip_release(public_ip=instance, user=self.request.user)

    @extend_schema(
        summary="Assign a public IPv4 address to a machine, move it, or unassign it",
        description="`assign` maps the address 1:1 onto the machine's primary private address (a machine has at "
        "most one); from another machine, that moves it. `unassign` keeps the address yours, unmapped.",
        tags=["ips"],
        request=s.PublicIPActionSerializer,
        responses={202: IP_ACCEPTED},
        examples=[
            OpenApiExample(
                "assign",
                request_only=True,
                value={"type": "assign", "instance": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10"},
            ),
            OpenApiExample("unassign", request_only=True, value={"type": "unassign"}),
        ],
    )
    @action(detail=True, methods=["post"], url_path="actions")
    def actions(self, request, pk=None):
        public_ip = self.get_object()
        data = self.validated(s.PublicIPActionSerializer, request.data)
        if data["type"] == "assign":
            public_ip = services.public_ip_assign(public_ip=public_ip, instance=data["instance"], user=request.user)
        else:
            public_ip = services.public_ip_unassign(public_ip=public_ip, user=request.user)
        return self.accepted(public_ip, s.PublicIPSerializer)


@extend_schema_view(
    list=extend_schema(summary="List your firewalls with their rules", tags=["firewalls"]),
    retrieve=extend_schema(summary="One firewall", tags=["firewalls"]),
    destroy=extend_schema(
        summary="Delete a firewall",
        description="Only one no live machine uses; the default firewall cannot be deleted (409).",
        tags=["firewalls"],
    ),
)
class FirewallViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    queryset = Firewall.objects.prefetch_related(
        Prefetch("rules", queryset=FirewallRule.objects.order_by("position", "id")), "instances"
    ).order_by("-is_default", "name", "id")
    serializer_class = s.FirewallSerializer
    filterset_class = FirewallFilter

    def _reloaded(self, firewall: Firewall) -> Firewall:
        return self.get_queryset().get(pk=firewall.pk)

    @extend_schema(
        summary="Create a firewall",
        description="Named allow rules (direction, protocol, port range for TCP/UDP, the peer's range); everything "
        "else is dropped, replies to allowed traffic pass. Apply it with `firewalls` on an instance.",
        tags=["firewalls"],
        request=s.FirewallCreateSerializer,
        responses={201: s.FirewallSerializer},
        examples=[OpenApiExample("web", request_only=True, value={"name": "web", "rules": EXAMPLE_RULES})],
    )
    def create(self, request):
        data = self.validated(s.FirewallCreateSerializer, request.data)
        firewall = services.firewall_create(
            tenant=request.tenant,
            user=request.user,
            name=data["name"],
            description=data["description"],
            rules=s.rule_inputs(data["rules"]),
            labels=data["labels"],
        )
        return self.created(self._reloaded(firewall), s.FirewallSerializer)

    @extend_schema(
        summary="Rename a firewall, replace its rules or change its labels",
        description="`rules` replaces the whole rule set; every machine with this firewall gets it live.",
        tags=["firewalls"],
        request=s.FirewallUpdateSerializer,
        responses={200: s.FirewallSerializer},
    )
    def partial_update(self, request, pk=None):
        firewall = self.get_object()
        data = self.validated(s.FirewallUpdateSerializer, request.data)
        rules = s.rule_inputs(data["rules"]) if "rules" in data else None
        firewall = services.firewall_update(
            firewall=firewall,
            user=request.user,
            name=data.get("name"),
            description=data.get("description"),
            rules=rules,
        )
        if "labels" in data:
            resource_labels_set(resource=firewall, user=request.user, labels=data["labels"])
        return Response(s.FirewallSerializer(self._reloaded(firewall)).data)

    def perform_destroy(self, instance):
        services.firewall_delete(firewall=instance, user=self.request.user)
