"""Compute endpoints: the catalog, SSH keys, and instances with their actions and event log.

Every write calls the same services as the dashboard (compute.services); nothing here decides a rule.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from compute import selectors, services
from compute.api import serializers as s
from compute.console import MAX_CONSOLE_LINES, instance_console_output
from compute.drivers.base import DriverError
from compute.filters import FlavorFilter, ImageFilter, InstanceFilter, SSHKeyFilter
from compute.models import Image, Instance, SSHKey
from compute.network.selectors import with_networking
from compute.network.services import instance_firewalls_set
from portal.api.filters import StrictBooleanField
from portal.api.schema import ErrorSerializer
from portal.api.views import CatalogViewSet, TenantApiView, TenantViewSet
from tenants.api.serializers import QuotasSerializer
from tenants.scoping import SAFE_METHODS, TenantScopedMixin, request_tenant

EXAMPLE_INSTANCE = {
    "id": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10",
    "name": "web-1",
    "state": "pending",
    "power_state": "nostate",
    "region": "default",
    "flavor": "9b2e6c1a-3d4f-4e5a-8b7c-6d5e4f3a2b1c",
    "image": "0e1d2c3b-4a59-4687-a5b4-c3d2e1f0a9b8",
    "resize_flavor": None,
    "private_ip": "10.1.0.2",
    "addresses": [
        {
            "interface": "eth0",
            "network": "7a1c0e52-9d3b-4f6e-8a21-5b4c3d2e1f00",
            "ip": "10.1.0.2",
            "prefix": 24,
            "mac": "52:54:00:3f:a1:07",
        }
    ],
    "public_ip": None,
    "firewalls": ["1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"],
    "ssh_keys": [{"name": "laptop", "fingerprint": "SHA256:7Qq2u7Qm1j3f1yqk0v8f0m4V6G7Y5c2Qh0xK3l9aBcd"}],
    "user_data": "",
    "traffic": None,
    "error_reason": "",
    "created_at": "2026-11-25T12:00:00Z",
    "updated_at": "2026-11-25T12:00:00Z",
}
ACCEPTED = OpenApiResponse(
    s.InstanceSerializer,
    description="Accepted: the work runs in the background. Poll the instance (its URL is in the Location header) "
    "or its events.",
    examples=[OpenApiExample("accepted", value=EXAMPLE_INSTANCE)],
)


@extend_schema_view(
    list=extend_schema(summary="List the sizes you can launch", tags=["catalog"]),
    retrieve=extend_schema(summary="One size", tags=["catalog"]),
)
class FlavorViewSet(CatalogViewSet):
    serializer_class = s.FlavorSerializer
    filterset_class = FlavorFilter

    def get_queryset(self):
        return selectors.flavor_list().order_by("vcpus", "ram_mib", "disk_gib", "name", "pk")


@extend_schema_view(
    list=extend_schema(summary="List the regions you can launch into", tags=["catalog"]),
    retrieve=extend_schema(summary="One region", tags=["catalog"]),
)
class RegionViewSet(CatalogViewSet):
    serializer_class = s.RegionSerializer

    def get_queryset(self):
        return selectors.region_list().order_by("name", "pk")


@extend_schema_view(
    list=extend_schema(summary="List the images you can launch", tags=["catalog"]),
    retrieve=extend_schema(summary="One image", tags=["catalog"]),
)
class ImageViewSet(mixins.DestroyModelMixin, CatalogViewSet):
    """The catalog and, for a member of an organisation, its private images (another's are a 404). Private images
    are made from a snapshot and deleted here; the catalog cannot be changed."""

    serializer_class = s.ImageSerializer
    filterset_class = ImageFilter

    def get_queryset(self):
        tenant = request_tenant(self.request)
        images = Image.objects.public().filter(active=True)
        if tenant is not None:
            # A private image stays readable once deleted, so a client polling its deletion sees `deleted`.
            images = images | Image.objects.for_tenant(tenant)
        if self.action == "list":
            images = images.exclude(state=Image.State.DELETED)
        return images.select_related("host__region").order_by("os", "-version", "name", "pk")

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method not in SAFE_METHODS:
            _ImageWrites().check_tenant_permission(request)

    @extend_schema(
        summary="Make a private image from a snapshot",
        description="Copies the snapshot into an image of your organisation, kept in the snapshot's region: the "
        "answer is the image in `creating`; once `available` it launches like any image (in that region) and is "
        "billed per GiB-month.",
        tags=["catalog"],
        request=s.ImageCreateSerializer,
        responses={202: s.ImageSerializer},
    )
    def create(self, request):
        from compute.storage.models import Snapshot
        from compute.storage.services.images import image_create

        data = self.validated(s.ImageCreateSerializer, request.data)
        snapshot = Snapshot.objects.for_tenant(request.tenant).filter(pk=data["snapshot"]).first()
        if snapshot is None:
            raise ValidationError({"snapshot": ["No snapshot of yours has that id."]})
        return self.accepted(image_create(snapshot=snapshot, user=request.user, name=data["name"]), s.ImageSerializer)

    @extend_schema(
        summary="Delete a private image",
        description="Only one no machine uses (409 `image_in_use` names them); catalog images cannot be deleted "
        "(409 `image_public`). Billing stops at once; the answer is the image in `deleting`.",
        tags=["catalog"],
        responses={202: s.ImageSerializer},
    )
    def destroy(self, request, pk=None):
        from compute.storage.services.images import image_delete

        return self.accepted(image_delete(image=self.get_object(), user=request.user), s.ImageSerializer)


@extend_schema_view(
    list=extend_schema(summary="List your SSH keys", tags=["ssh-keys"]),
    retrieve=extend_schema(summary="One SSH key", tags=["ssh-keys"]),
    destroy=extend_schema(
        summary="Delete an SSH key",
        description="Instances keep the copy they were launched with.",
        tags=["ssh-keys"],
    ),
)
class SSHKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    queryset = SSHKey.objects.order_by("name", "id")
    serializer_class = s.SSHKeySerializer
    filterset_class = SSHKeyFilter

    @extend_schema(
        summary="Add an SSH key",
        tags=["ssh-keys"],
        request=s.SSHKeyCreateSerializer,
        responses={201: s.SSHKeySerializer},
        examples=[
            OpenApiExample(
                "ed25519",
                request_only=True,
                value={"name": "laptop", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI… me@laptop"},
            )
        ],
    )
    def create(self, request):
        data = self.validated(s.SSHKeyCreateSerializer, request.data)
        key = services.sshkey_create(tenant=request.tenant, user=request.user, **data)
        return self.created(key, s.SSHKeySerializer)

    @extend_schema(
        summary="Change the labels of an SSH key",
        tags=["ssh-keys"],
        request=s.LabelsUpdateSerializer,
        responses={200: s.SSHKeySerializer},
    )
    def partial_update(self, request, pk=None):
        key = self.get_object()
        data = self.validated(s.LabelsUpdateSerializer, request.data)
        key = services.resource_labels_set(resource=key, user=request.user, labels=data["labels"])
        return Response(s.SSHKeySerializer(key).data)

    def perform_destroy(self, instance):
        services.sshkey_delete(key=instance, user=self.request.user)


# Columns of an instance the list's rows never read (the work in progress, where its disk came from, who launched it).
LIST_UNREAD = (
    "task_params",
    "disk_source",
    "task_enqueued_at",
    "task_progress_at",
    "task_deadline",
    "task_requeues",
    "created_by",
    "migration_host",
    "deleted_at",
)


@extend_schema_view(
    list=extend_schema(summary="List your instances (deleted ones are left out)", tags=["instances"]),
    retrieve=extend_schema(
        summary="One instance",
        description="Deleted instances stay readable, so a client polling a delete sees `deleted`.",
        tags=["instances"],
        examples=[
            OpenApiExample(
                "running",
                value={**EXAMPLE_INSTANCE, "state": "running", "power_state": "running"},
            )
        ],
    ),
)
class InstanceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    # Neither flavor nor image rows are loaded: the serializer shows their ids, which the instance row holds.
    queryset = Instance.objects.select_related("region", "traffic").order_by("-created_at", "id")
    # The list's rows are only read: the region's name rides along instead of a Region per row, the columns no field
    # shows are not read, and the networking is in the same query. Made once (each step of a chain copies the query).
    list_queryset = with_networking(
        Instance.objects.live()
        .select_related("traffic")
        .annotate(region_name=F("region__name"))
        .defer(*LIST_UNREAD)
        .order_by("-created_at", "id")
    )
    serializer_class = s.InstanceSerializer
    filterset_class = InstanceFilter

    def get_queryset(self):
        if self.action == "list":
            self.queryset = self.list_queryset
        queryset = super().get_queryset()
        if self.action in ("retrieve", "partial_update"):
            queryset = with_networking(queryset)
        return queryset

    def filter_queryset(self, queryset):
        # Only the list is filtered; an instance named in the URL is found whatever the query string says. A list
        # asked for without any filter is left as it is (building and validating the filter form costs a page).
        if self.action not in ("list", None) or not set(self.request.query_params) & set(InstanceFilter.base_filters):
            return queryset
        return super().filter_queryset(queryset)

    @extend_schema(
        summary="Launch an instance",
        description="Checks quota and the region's capacity at once (a region without room refuses with 422 "
        "`no_capacity` before anything is billed), then builds in the background: the answer is the new instance in "
        "`pending`; poll it until `running`.",
        tags=["instances"],
        request=s.InstanceCreateSerializer,
        responses={202: ACCEPTED},
        examples=[
            OpenApiExample(
                "launch",
                request_only=True,
                value={
                    "name": "web-1",
                    "flavor": EXAMPLE_INSTANCE["flavor"],
                    "image": EXAMPLE_INSTANCE["image"],
                    "ssh_keys": ["3c9d2b1a-0f8e-4d7c-b6a5-948372615a0b"],
                },
            ),
            OpenApiExample(
                "launch on a network, with a public address and user-data",
                request_only=True,
                value={
                    "name": "web-2",
                    "flavor": EXAMPLE_INSTANCE["flavor"],
                    "image": EXAMPLE_INSTANCE["image"],
                    "ssh_keys": ["3c9d2b1a-0f8e-4d7c-b6a5-948372615a0b"],
                    "networks": ["7a1c0e52-9d3b-4f6e-8a21-5b4c3d2e1f00"],
                    "firewalls": ["1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"],
                    "public_ip": True,
                    "user_data": "#cloud-config\npackages: [nginx]\n",
                },
            ),
        ],
    )
    def create(self, request):
        data = self.validated(s.InstanceCreateSerializer, request.data)
        instance = services.instance_launch(
            tenant=request.tenant,
            user=request.user,
            name=data["name"],
            flavor=data["flavor"],
            image=data["image"],
            keys=data["ssh_keys"],
            region=data["region"],
            networks=data["networks"],
            firewalls=data["firewalls"],
            user_data=data["user_data"],
            public_ip=data["public_ip"],
            labels=data["labels"],
        )
        return self.accepted(instance, s.InstanceSerializer)

    @extend_schema(
        summary="Rename an instance, change its firewalls or its labels",
        description="`name` changes the display name only (the guest's hostname was set at build); `firewalls` "
        "replaces the machine's firewalls, applied live by its host.",
        tags=["instances"],
        request=s.InstanceUpdateSerializer,
        responses={200: s.InstanceSerializer},
    )
    def partial_update(self, request, pk=None):
        instance = self.get_object()
        data = self.validated(s.InstanceUpdateSerializer, request.data)
        if "name" in data:
            instance = services.instance_rename(instance=instance, user=request.user, name=data["name"])
        if "firewalls" in data:
            instance = instance_firewalls_set(instance=instance, firewalls=data["firewalls"], user=request.user)
        if "labels" in data:
            instance = services.resource_labels_set(resource=instance, user=request.user, labels=data["labels"])
        return Response(s.InstanceSerializer(self.get_queryset().get(pk=instance.pk)).data)

    @extend_schema(
        summary="Delete an instance",
        description="Billing stops at once; the machine and its disk are destroyed in the background. The answer "
        "is the instance in `deleting`; it reaches `deleted`. Its backups are kept (and billed until deleted) "
        "unless `delete_backups=true`.",
        tags=["instances"],
        parameters=[
            OpenApiParameter(
                "delete_backups",
                bool,
                description="Delete the machine's backups too (default: keep them; they can be restored as a new "
                "machine).",
            )
        ],
        responses={202: ACCEPTED},
        filters=False,
    )
    def destroy(self, request, pk=None):
        raw = request.query_params.get("delete_backups")
        try:
            delete_backups = raw is not None and StrictBooleanField().clean(raw)
        except DjangoValidationError as error:
            raise ValidationError({"delete_backups": error.messages}) from error
        instance = services.instance_delete(
            instance=self.get_object(), user=request.user, delete_backups=delete_backups
        )
        return self.accepted(instance, s.InstanceSerializer)

    @extend_schema(
        summary="Start, stop, reboot or resize an instance",
        description="`start` needs a stopped instance, `stop` and `reboot` a running one, `resize` a stopped one "
        "(the disk never shrinks). An instance in a transitional state refuses every action with 409.",
        tags=["instances"],
        request=s.InstanceActionSerializer,
        responses={202: ACCEPTED},
        examples=[
            OpenApiExample("stop", request_only=True, value={"type": "stop"}),
            OpenApiExample("resize", request_only=True, value={"type": "resize", "flavor": EXAMPLE_INSTANCE["flavor"]}),
        ],
    )
    @action(detail=True, methods=["post"], url_path="actions")
    def actions(self, request, pk=None):
        instance = self.get_object()
        data = self.validated(s.InstanceActionSerializer, request.data)
        kind = data["type"]
        if kind == "start":
            instance = services.instance_start(instance=instance, user=request.user)
        elif kind == "stop":
            instance = services.instance_stop(instance=instance, user=request.user)
        elif kind == "reboot":
            instance = services.instance_reboot(instance=instance, user=request.user)
        else:
            instance = services.instance_resize(instance=instance, user=request.user, flavor=data["flavor"])
        return self.accepted(instance, s.InstanceSerializer)

    @extend_schema(
        summary="An instance's serial console output (read-only)",
        description="The last `lines` lines the guest wrote to its serial console; empty until it has been built.",
        tags=["instances"],
        parameters=[
            OpenApiParameter(
                "lines",
                {"type": "integer", "minimum": 1, "maximum": MAX_CONSOLE_LINES},
                description=f"How many lines, 1 to {MAX_CONSOLE_LINES} (default 100).",
            )
        ],
        responses={
            200: s.ConsoleSerializer,
            503: OpenApiResponse(ErrorSerializer, description="The machine's host cannot be reached right now."),
        },
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="console", filterset_class=None)
    def console(self, request, pk=None):
        instance = self.get_object()
        raw = request.query_params.get("lines", "100")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_CONSOLE_LINES:
            raise ValidationError({"lines": [f"Must be a whole number from 1 to {MAX_CONSOLE_LINES}."]})
        try:
            output = instance_console_output(instance=instance, lines=int(raw))
        except DriverError as error:
            raise ConsoleUnavailable(f"The console cannot be read right now: {error}") from None
        return Response(s.ConsoleSerializer({"lines": int(raw), "output": output}).data)

    @extend_schema(
        summary="An instance's event log, newest first",
        description="One row per request and per outcome (who, what, when, result, message).",
        tags=["instances"],
        responses={200: s.InstanceEventSerializer(many=True)},
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="events", filterset_class=None)
    def events(self, request, pk=None):
        instance = self.get_object()
        page = self.paginate_queryset(selectors.instance_events(instance=instance))
        return self.get_paginated_response(s.InstanceEventSerializer(page, many=True).data)


class _ImageWrites(TenantScopedMixin):
    """The role check of a write to the images (the catalog itself is readable by anyone signed in)."""


class ConsoleUnavailable(APIException):
    status_code = 503
    default_code = "console_unavailable"
    default_detail = "The machine's host cannot be reached right now; try again shortly."


class QuotasView(TenantApiView):
    """The most your organisation may hold at once, and what it holds now."""

    serializer_class = QuotasSerializer

    @extend_schema(
        operation_id="quotas_retrieve",
        summary="Quota limits and current usage",
        tags=["tenant"],
        examples=[
            OpenApiExample(
                "quotas",
                value={
                    "instances": {"limit": 10, "used": 3, "free": 7, "percent": 30},
                    "vcpus": {"limit": 32, "used": 6, "free": 26, "percent": 18},
                    "ram_mib": {"limit": 65536, "used": 12288, "free": 53248, "percent": 18},
                    "volume_gb": {"limit": 1000, "used": 100, "free": 900, "percent": 10},
                    "volumes": {"limit": 10, "used": 1, "free": 9, "percent": 10},
                    "public_ips": {"limit": 5, "used": 0, "free": 5, "percent": 0},
                },
            )
        ],
    )
    def get(self, request):
        return Response(QuotasSerializer(selectors.quota_usage(tenant=request.tenant)).data)
