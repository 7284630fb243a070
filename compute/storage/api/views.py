"""Storage endpoints: volumes (with attach, detach and extend) and snapshots (with a new volume from one).

Every write calls the same services as the dashboard (compute.storage.services); nothing here decides a rule.
The work runs in the background: writes answer 202 with the item in its transitional state and its URL in the
Location header; poll it (or its events) until it settles.
"""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from compute.models import Instance
from compute.storage import selectors, services
from compute.storage.api import serializers as s
from compute.storage.filters import SnapshotFilter, VolumeFilter
from compute.storage.models import Snapshot, Volume
from portal.api.views import TenantViewSet

EXAMPLE_VOLUME = {
    "id": "3f6b1c2d-4e5a-4b7c-8d9e-0a1b2c3d4e5f",
    "name": "data-1",
    "size_gib": 100,
    "state": "creating",
    "region": "default",
    "attachment": None,
    "guest_id": "3f6b1c2d4e5a4b7c8d9e",
    "source_snapshot": None,
    "labels": {"env": "prod"},
    "allowed_actions": [],
    "error_reason": "",
    "created_at": "2026-11-25T12:00:00Z",
    "updated_at": "2026-11-25T12:00:00Z",
}
EXAMPLE_SNAPSHOT = {
    "id": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
    "name": "data-1-before-upgrade",
    "size_gib": 100,
    "state": "creating",
    "region": "default",
    "source_volume": EXAMPLE_VOLUME["id"],
    "source_instance": None,
    "source_name": "data-1",
    "crash_consistent": True,
    "labels": {},
    "allowed_actions": [],
    "error_reason": "",
    "created_at": "2026-11-25T12:00:00Z",
    "updated_at": "2026-11-25T12:00:00Z",
}
VOLUME_ACCEPTED = OpenApiResponse(
    s.VolumeSerializer,
    description="Accepted: the work runs in the background. Poll the volume (its URL is in the Location header).",
    examples=[OpenApiExample("accepted", value=EXAMPLE_VOLUME)],
)
SNAPSHOT_ACCEPTED = OpenApiResponse(
    s.SnapshotSerializer,
    description="Accepted: the work runs in the background. Poll the snapshot (its URL is in the Location header).",
    examples=[OpenApiExample("accepted", value=EXAMPLE_SNAPSHOT)],
)


def _update_schema(what: str, tag: str, request, response):
    return extend_schema(
        summary=f"Rename a {what} or replace its labels", tags=[tag], request=request, responses={200: response}
    )


class _StorageViewSet(TenantViewSet):
    kind = ""  # "volume" or "snapshot": the keyword its services and its event log take it by
    update_serializer_class = None
    update_service = None
    filterset_class = None

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.exclude(state="deleted") if self.action == "list" else queryset

    # Renames the item and/or replaces its labels; each viewset names it in its schema (extend_schema_view).
    def partial_update(self, request, pk=None):
        item = self.get_object()
        data = self.validated(self.update_serializer_class, request.data)
        item = type(self).update_service(**{self.kind: item}, user=request.user, **data)
        return Response(self.get_serializer(self.get_queryset().get(pk=item.pk)).data)

    # The item's event log, newest first; each viewset names it in its schema (extend_schema_view).
    @extend_schema(responses={200: s.StorageEventSerializer(many=True)}, filters=False)
    @action(detail=True, methods=["get"], url_path="events", filterset_class=None)
    def events(self, request, pk=None):
        scope = {self.kind: self.get_object()}
        page = self.paginate_queryset(selectors.storage_events(tenant=request.tenant, **scope))
        return self.get_paginated_response(s.StorageEventSerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="List your volumes (deleted ones are left out)", tags=["volumes"]),
    partial_update=_update_schema("volume", "volumes", s.VolumeUpdateSerializer, s.VolumeSerializer),
    events=extend_schema(summary="A volume's event log, newest first", tags=["volumes"]),
    retrieve=extend_schema(
        summary="One volume",
        description="Deleted volumes stay readable, so a client polling a delete sees `deleted`.",
        tags=["volumes"],
    ),
)
class VolumeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _StorageViewSet):
    queryset = Volume.objects.select_related("region", "instance").order_by("-created_at", "id")
    serializer_class = s.VolumeSerializer
    filterset_class = VolumeFilter
    kind = "volume"
    update_serializer_class = s.VolumeUpdateSerializer
    update_service = services.volume_update

    @extend_schema(
        summary="Create a volume",
        description="Empty (`size_gib`) or from one of your snapshots (`snapshot`, at least its size). Checks the "
        "quota (total GiB and number of volumes) and a host's room at once, then creates it in the background: "
        "the answer is the volume in `creating`; it becomes `available`. Billed per GiB per started hour from then.",
        tags=["volumes"],
        request=s.VolumeCreateSerializer,
        responses={202: VOLUME_ACCEPTED},
        examples=[
            OpenApiExample("empty", request_only=True, value={"name": "data-1", "size_gib": 100}),
            OpenApiExample(
                "from a snapshot", request_only=True, value={"name": "data-2", "snapshot": EXAMPLE_SNAPSHOT["id"]}
            ),
        ],
    )
    def create(self, request):
        data = self.validated(s.VolumeCreateSerializer, request.data)
        volume = services.volume_create(tenant=request.tenant, user=request.user, **data)
        return self.accepted(volume, s.VolumeSerializer)

    @extend_schema(
        summary="Delete a volume",
        description="Only an unattached volume (409 `volume_attached` names the machine). Billing stops at once; "
        "the data is deleted in the background; the answer is the volume in `deleting`. Its snapshots are kept.",
        tags=["volumes"],
        responses={202: VOLUME_ACCEPTED},
    )
    def destroy(self, request, pk=None):
        return self.accepted(services.volume_delete(volume=self.get_object(), user=request.user), s.VolumeSerializer)

    @extend_schema(
        summary="Attach a volume to a machine",
        description="An available volume, to one of your running (hot-plugged) or stopped machines on the host that "
        "keeps the volume: it becomes the machine's next disk (vdb…). A machine holds at most 16 volumes (422 "
        "`too_many_volumes`); another organisation's machine is not found (404).",
        tags=["volumes"],
        request=s.VolumeAttachSerializer,
        responses={202: VOLUME_ACCEPTED},
        examples=[
            OpenApiExample("attach", request_only=True, value={"instance": "5d0f3f1e-8a4b-4c47-9a53-1f3d2c7b9e10"})
        ],
    )
    @action(detail=True, methods=["post"], url_path="attach")
    def attach(self, request, pk=None):
        volume = self.get_object()
        data = self.validated(s.VolumeAttachSerializer, request.data)
        instance = Instance.objects.for_tenant(request.tenant).filter(pk=data["instance"]).first()
        if instance is None:
            raise NotFound("No machine of yours has that id.")
        return self.accepted(
            services.volume_attach(volume=volume, instance=instance, user=request.user), s.VolumeSerializer
        )

    @extend_schema(
        summary="Detach a volume from its machine",
        description="Hot-unplugged from a running machine (unmount it in the guest first); the data stays on the "
        "volume, which becomes `available`.",
        tags=["volumes"],
        request=None,
        responses={202: VOLUME_ACCEPTED},
    )
    @action(detail=True, methods=["post"], url_path="detach")
    def detach(self, request, pk=None):
        return self.accepted(services.volume_detach(volume=self.get_object(), user=request.user), s.VolumeSerializer)

    @extend_schema(
        summary="Extend a volume",
        description="Grows it to `size_gib` (never shrinks: 400 `volume_shrink`), online while attached to a running "
        "machine, which sees the new size at once (grow the file system inside). The growth counts against your "
        "quota; billing moves to the new size when it is done.",
        tags=["volumes"],
        request=s.VolumeExtendSerializer,
        responses={202: VOLUME_ACCEPTED},
        examples=[OpenApiExample("extend", request_only=True, value={"size_gib": 200})],
    )
    @action(detail=True, methods=["post"], url_path="extend")
    def extend(self, request, pk=None):
        volume = self.get_object()
        data = self.validated(s.VolumeExtendSerializer, request.data)
        return self.accepted(
            services.volume_extend(volume=volume, user=request.user, size_gib=data["size_gib"]), s.VolumeSerializer
        )


@extend_schema_view(
    list=extend_schema(summary="List your snapshots (deleted ones are left out)", tags=["snapshots"]),
    retrieve=extend_schema(summary="One snapshot", tags=["snapshots"]),
    partial_update=_update_schema("snapshot", "snapshots", s.SnapshotUpdateSerializer, s.SnapshotSerializer),
    events=extend_schema(summary="A snapshot's event log, newest first", tags=["snapshots"]),
)
class SnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _StorageViewSet):
    queryset = Snapshot.objects.select_related("region").order_by("-created_at", "id")
    serializer_class = s.SnapshotSerializer
    filterset_class = SnapshotFilter
    kind = "snapshot"
    update_serializer_class = s.SnapshotUpdateSerializer
    update_service = services.snapshot_update

    @extend_schema(
        summary="Take a snapshot of a volume",
        description="Of an available or in-use volume. Of a volume attached to a running machine the snapshot is "
        "crash-consistent (`crash_consistent`: like the disk after a power cut; stop the machine or freeze the file "
        "system for a clean one). Billed per GiB per started hour once `available`.",
        tags=["snapshots"],
        request=s.SnapshotCreateSerializer,
        responses={202: SNAPSHOT_ACCEPTED},
        examples=[
            OpenApiExample(
                "snapshot", request_only=True, value={"name": "data-1-before-upgrade", "volume": EXAMPLE_VOLUME["id"]}
            )
        ],
    )
    def create(self, request):
        data = self.validated(s.SnapshotCreateSerializer, request.data)
        snapshot = services.snapshot_create(
            volume=data["volume"], user=request.user, name=data["name"], labels=data["labels"]
        )
        return self.accepted(snapshot, s.SnapshotSerializer)

    @extend_schema(
        summary="Delete a snapshot",
        description="Billing stops at once; volumes made from it keep their data.",
        tags=["snapshots"],
        responses={202: SNAPSHOT_ACCEPTED},
    )
    def destroy(self, request, pk=None):
        snapshot = services.snapshot_delete(snapshot=self.get_object(), user=request.user)
        return self.accepted(snapshot, s.SnapshotSerializer)

    @extend_schema(
        summary="Create a volume from a snapshot",
        description="A new volume with the snapshot's data, at least its size, next to it; the same as POST "
        "/volumes/ with `snapshot`. The answer is the new volume (its URL in the Location header).",
        tags=["snapshots"],
        request=s.SnapshotVolumeSerializer,
        responses={202: VOLUME_ACCEPTED},
        examples=[OpenApiExample("restore", request_only=True, value={"name": "data-restored"})],
    )
    @action(detail=True, methods=["post"], url_path="volumes")
    def volumes(self, request, pk=None):
        snapshot = self.get_object()
        data = self.validated(s.SnapshotVolumeSerializer, request.data)
        volume = services.volume_create(tenant=request.tenant, user=request.user, snapshot=snapshot, **data)
        return self.accepted(volume, s.VolumeSerializer, route="api:volume-detail")
