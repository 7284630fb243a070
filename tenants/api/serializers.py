from rest_framework import serializers

from tenants.models import ActivityEntry, Tenant
from tenants.roles import Role


class TenantSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Role.choices, read_only=True, help_text="Your role in this organisation.")
    accepts_new_resources = serializers.BooleanField(
        read_only=True, help_text="False while the organisation is on hold or suspended."
    )

    class Meta:
        model = Tenant
        fields = ["id", "name", "status", "created_at", "role", "accepts_new_resources"]
        read_only_fields = fields


class QuotaItemSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    free = serializers.IntegerField()
    percent = serializers.IntegerField(help_text="Share of the limit in use, 0 to 100, rounded down.")


class QuotasSerializer(serializers.Serializer):
    instances = QuotaItemSerializer()
    vcpus = QuotaItemSerializer()
    ram_mib = QuotaItemSerializer()
    volume_gb = QuotaItemSerializer(help_text="Volume storage in GiB (the sum of your volumes' sizes).")
    volumes = QuotaItemSerializer(help_text="How many volumes.")
    public_ips = QuotaItemSerializer()


class ActivityEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor_email", read_only=True, help_text="The e-mail address of who acted; empty: Hangar itself."
    )
    actor_id = serializers.IntegerField(read_only=True, allow_null=True)
    token_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="The API token used, if any.")

    class Meta:
        model = ActivityEntry
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_id",
            "token_id",
            "token_name",
            "channel",
            "ip_address",
            "resource_type",
            "resource_id",
            "resource_name",
            "action",
            "action_label",
            "outcome",
            "message",
        ]
        read_only_fields = fields
