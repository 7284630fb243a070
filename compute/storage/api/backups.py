"""Backup endpoints: a machine's backup schedule, its backups, and their restore (as a new machine, or over the
machine's own disk). Every write calls compute.storage.services; nothing here decides a rule."""

from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from compute.api.serializers import InstanceSerializer, OwnedObjectField
from compute.models import Flavor, Instance, SSHKey
from compute.network.models import Firewall
from compute.storage import backup_selectors as selectors
from compute.storage.api.serializers import SnapshotSerializer
from compute.storage.backup_models import Backup, BackupState
from compute.storage.services import backups as services
from compute.storage.services.boot_snapshots import instance_snapshot
from portal.api.fields import StrictBooleanField, StrictCharField
from portal.api.views import HangarApiMixin, TenantViewSet
from tenants.scoping import TenantScopedMixin


class BackupSerializer(serializers.ModelSerializer):
    instance = serializers.UUIDField(source="instance_id", read_only=True, allow_null=True)
    flavor = serializers.UUIDField(source="flavor_id", read_only=True)
    image = serializers.UUIDField(source="image_id", read_only=True)
    region = serializers.CharField(source="region.name", read_only=True)

    class Meta:
        model = Backup
        fields = [
            "id",
            "name",
            "state",
            "kind",
            "instance",
            "source_name",
            "flavor",
            "image",
            "size_gib",
            "crash_consistent",
            "region",
            "error_reason",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields


class BackupCreateSerializer(serializers.Serializer):
    instance = OwnedObjectField(Instance, help_text="The machine to back up now (backups must be enabled on it).")


class BackupRestoreSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=["new", "overwrite"],
        help_text="`new`: launch a new machine from the backup; `overwrite`: replace the machine's own disk.",
    )
    name = StrictCharField(max_length=63, required=False, help_text="`new`: the new machine's name.")
    flavor = serializers.PrimaryKeyRelatedField(
        queryset=Flavor.objects.active(), required=False, help_text="`new`: its size (default: the original's)."
    )
    ssh_keys = OwnedObjectField(SSHKey, many=True, required=False)
    firewalls = OwnedObjectField(Firewall, many=True, required=False)
    public_ip = StrictBooleanField(required=False, default=False)
    confirm_name = StrictCharField(
        max_length=200, required=False, help_text="`overwrite`: the machine's name, typed to confirm."
    )

    def validate(self, data):
        if data["mode"] == "new" and not data.get("name"):
            raise serializers.ValidationError({"name": ["Name the new machine."]})
        if data["mode"] == "overwrite" and not data.get("confirm_name"):
            raise serializers.ValidationError({"confirm_name": ["Type the machine's name to confirm."]})
        return data


class BackupPolicySerializer(serializers.Serializer):
    enabled = StrictBooleanField()
    hour = serializers.IntegerField(min_value=0, max_value=23, help_text="The hour of the day (UTC) it runs.")
    minute = serializers.IntegerField(read_only=True, help_text="Its start in the hour, spread per machine.")
    keep = serializers.IntegerField(read_only=True, help_text="How many backups are kept (the newest).")
    next_run_at = serializers.DateTimeField(read_only=True, allow_null=True)
    monthly_price = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, help_text="What backups of this machine cost per month."
    )
    share_percent = serializers.DecimalField(
        max_digits=6, decimal_places=2, read_only=True, help_text="The share of the machine's price."
    )


class BackupPolicyUpdateSerializer(serializers.Serializer):
    enabled = StrictBooleanField()
    hour = serializers.IntegerField(min_value=0, max_value=23, required=False, default=3)
    delete_backups = StrictBooleanField(
        required=False, default=False, help_text="Turning backups off: delete the backups made so far too."
    )


@extend_schema_view(
    list=extend_schema(
        summary="List your backups (deleted ones are left out), newest first",
        tags=["backups"],
        parameters=[OpenApiParameter("instance", str, description="Only the backups of this machine (its id).")],
    ),
    retrieve=extend_schema(summary="One backup", tags=["backups"]),
)
class BackupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    queryset = Backup.objects.select_related("region").order_by("-created_at", "id")
    serializer_class = BackupSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = queryset.exclude(state=BackupState.DELETED)
            instance = self.request.query_params.get("instance")
            if instance:
                try:
                    queryset = queryset.filter(instance_id=serializers.UUIDField().to_internal_value(instance))
                except serializers.ValidationError:
                    raise serializers.ValidationError({"instance": ["Must be a machine's id."]}) from None
        return queryset

    @extend_schema(
        summary="Back up a machine now",
        description="Backups must be enabled on it (its schedule keeps the newest 7, this one included). A running "
        "machine's backup is crash-consistent. The answer is the backup in `creating`.",
        tags=["backups"],
        request=BackupCreateSerializer,
        responses={202: BackupSerializer},
    )
    def create(self, request):
        data = self.validated(BackupCreateSerializer, request.data)
        return self.accepted(services.backup_create(instance=data["instance"], user=request.user), BackupSerializer)

    @extend_schema(
        summary="Delete a backup",
        description="An available or failed backup; the answer is the backup in `deleting`.",
        tags=["backups"],
        responses={202: BackupSerializer},
    )
    def destroy(self, request, pk=None):
        return self.accepted(services.backup_delete(backup=self.get_object(), user=request.user), BackupSerializer)

    @extend_schema(
        summary="Restore a backup",
        description="`new`: launches a new machine whose disk is a copy of the backup (in the backup's region; the "
        "original's size unless `flavor`). `overwrite`: replaces the machine's own disk with the backup, after "
        "`confirm_name` repeats its name; it is stopped, restored and started again if it ran, and everything "
        "written since the backup is lost. The answer is the machine (new in `pending`, or `restoring`).",
        tags=["backups"],
        request=BackupRestoreSerializer,
        responses={202: InstanceSerializer},
        examples=[
            OpenApiExample("as a new machine", request_only=True, value={"mode": "new", "name": "web-1-restored"}),
            OpenApiExample("overwrite", request_only=True, value={"mode": "overwrite", "confirm_name": "web-1"}),
        ],
    )
    @action(detail=True, methods=["post"], url_path="restore")
    def restore(self, request, pk=None):
        backup = self.get_object()
        data = self.validated(BackupRestoreSerializer, request.data)
        if data["mode"] == "overwrite":
            instance = services.backup_restore(backup=backup, user=request.user, confirm_name=data["confirm_name"])
        else:
            instance = services.backup_restore_as_new(
                backup=backup,
                user=request.user,
                name=data["name"],
                flavor=data.get("flavor"),
                keys=data.get("ssh_keys", []),
                firewalls=data.get("firewalls", []),
                public_ip=data["public_ip"],
            )
        return self.accepted(instance, InstanceSerializer, route="api:instance-detail")


class InstanceBackupPolicyView(HangarApiMixin, TenantScopedMixin, generics.GenericAPIView):
    """A machine's daily backup schedule."""

    queryset = Instance.objects.select_related("flavor").order_by("pk")
    serializer_class = BackupPolicySerializer
    filter_backends = []

    def _instance(self, pk) -> Instance:
        return self.get_object()

    def _answer(self, instance: Instance) -> Response:
        return Response(BackupPolicySerializer(selectors.backup_policy_view(instance=instance)).data)

    @extend_schema(summary="A machine's backup schedule and what it costs", tags=["backups"])
    def get(self, request, pk):
        return self._answer(self._instance(pk))

    @extend_schema(
        summary="Turn a machine's daily backups on (at an hour, UTC) or off",
        description="On: a backup every day at `hour` (each machine at its own minute of it), the newest 7 kept, "
        "billed as a share of the machine's price. Off: backups made so far are kept (billed until deleted) unless "
        "`delete_backups`.",
        tags=["backups"],
        request=BackupPolicyUpdateSerializer,
        responses={200: BackupPolicySerializer},
        examples=[OpenApiExample("daily at 3", request_only=True, value={"enabled": True, "hour": 3})],
    )
    def put(self, request, pk):
        instance = self._instance(pk)
        data = self.validated(BackupPolicyUpdateSerializer, request.data)
        if data["enabled"]:
            services.backups_enable(instance=instance, user=request.user, hour=data["hour"])
        else:
            services.backups_disable(instance=instance, user=request.user, delete_backups=data["delete_backups"])
        return self._answer(instance)


class InstanceSnapshotCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=63)


class InstanceSnapshotView(HangarApiMixin, TenantScopedMixin, generics.GenericAPIView):
    """A snapshot of a machine's boot disk."""

    queryset = Instance.objects.select_related("flavor", "host").order_by("pk")
    serializer_class = SnapshotSerializer
    filter_backends = []

    @extend_schema(
        summary="Snapshot a machine's boot disk",
        description="A running or stopped machine; a running one's snapshot is crash-consistent (like the disk after "
        "a power cut: `crash_consistent` is true). The snapshot makes volumes (`POST /snapshots/{id}/volumes/`) "
        "or a private image (`POST /images/`). The answer is the snapshot in `creating`.",
        tags=["snapshots"],
        request=InstanceSnapshotCreateSerializer,
        responses={202: SnapshotSerializer},
    )
    def post(self, request, pk):
        instance = self.get_object()
        data = self.validated(InstanceSnapshotCreateSerializer, request.data)
        snapshot = instance_snapshot(instance=instance, user=request.user, name=data["name"])
        return self.accepted(snapshot, SnapshotSerializer, route="api:snapshot-detail")


routes = [("backups", BackupViewSet, "backup")]
urlpatterns = [
    path("instances/<uuid:pk>/backup-policy/", InstanceBackupPolicyView.as_view(), name="instance-backup-policy"),
    path("instances/<uuid:pk>/snapshot/", InstanceSnapshotView.as_view(), name="instance-snapshot"),
]

__all__ = ["routes", "urlpatterns"]
