from rest_framework import serializers

from compute.models import Instance
from compute.monitoring.models import AlertIncident, AlertNotification, AlertPolicy, Comparison, Metric
from compute.monitoring.selectors import USAGE_RANGES
from compute.monitoring.services.alerts import POLICY_FIELDS
from portal.api.fields import StrictBooleanField, StrictCharField


def _series(help_text: str):
    return serializers.ListField(child=serializers.FloatField(allow_null=True), help_text=help_text)


class InstanceMetricsSerializer(serializers.Serializer):
    range = serializers.ChoiceField(choices=list(USAGE_RANGES))
    resolution_seconds = serializers.IntegerField(help_text="60, 300 or 3600: each point averages that period.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    timestamps = serializers.ListField(
        child=serializers.IntegerField(), help_text="Unix time (UTC seconds) each period starts at."
    )
    cpu_percent = _series("CPU, percent of the machine's vCPUs; null where there is no data (the machine was off).")
    disk_read_bps = _series("Bytes read from disk per second.")
    disk_write_bps = _series("Bytes written to disk per second.")
    net_in_bps = _series("Bytes received per second.")
    net_out_bps = _series("Bytes sent per second.")


class AlertPolicySerializer(serializers.ModelSerializer):
    instance = serializers.UUIDField(source="instance_id", read_only=True, allow_null=True)
    webhook_url = serializers.CharField(read_only=True, help_text="Where webhooks go; empty for none.")
    condition = serializers.CharField(read_only=True)
    scope = serializers.ChoiceField(
        choices=["instance", "label", "all"],
        read_only=True,
        help_text="One machine (`instance`), the machines with `label_selector`, or all of them.",
    )

    class Meta:
        model = AlertPolicy
        fields = ["id", *POLICY_FIELDS, "scope", "condition", "created_at"]
        read_only_fields = fields


class AlertPolicyWithSecretSerializer(AlertPolicySerializer):
    webhook_secret = serializers.CharField(
        read_only=True, help_text="Signs each webhook: X-Hangar-Signature-256 is sha256=HMAC-SHA256(secret, body)."
    )

    class Meta(AlertPolicySerializer.Meta):
        fields = [*AlertPolicySerializer.Meta.fields, "webhook_secret"]
        read_only_fields = fields


class AlertPolicyInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    metric = serializers.ChoiceField(choices=Metric.choices)
    comparison = serializers.ChoiceField(choices=Comparison.choices, default=Comparison.ABOVE)
    threshold = serializers.FloatField(min_value=0, help_text="CPU in percent; disk and network in bytes per second.")
    duration_minutes = serializers.IntegerField(min_value=1, max_value=1440, default=5)
    instance = serializers.PrimaryKeyRelatedField(
        queryset=Instance.objects.none(), allow_null=True, default=None, help_text="One machine; null for all."
    )
    label_selector = serializers.CharField(
        max_length=127,
        allow_blank=True,
        default="",
        help_text="With `instance` null: only the machines with this label, `key=value` or `key`; empty for all.",
    )
    notify_email = StrictBooleanField(default=True)
    webhook_url = serializers.URLField(max_length=500, allow_blank=True, default="")
    enabled = StrictBooleanField(default=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tenant = self.context.get("tenant")
        if tenant is not None:
            self.fields["instance"].queryset = Instance.objects.for_tenant(tenant).live()


class AlertNotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertNotification
        fields = ["id", "event", "channel", "status", "attempts", "last_error", "sent_at"]
        read_only_fields = fields


class AlertIncidentSerializer(serializers.ModelSerializer):
    instance = serializers.UUIDField(source="instance_id", read_only=True)
    instance_name = serializers.CharField(source="instance.name", read_only=True)
    notifications = AlertNotificationSerializer(many=True, read_only=True)

    class Meta:
        model = AlertIncident
        fields = [
            "id",
            "instance",
            "instance_name",
            "fired_at",
            "fired_value",
            "recovered_at",
            "recovered_value",
            "notifications",
        ]
        read_only_fields = fields
