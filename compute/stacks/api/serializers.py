from rest_framework import serializers

from compute.stacks.models import RunState, StackPlan, StackRun


class ChangeSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["create", "update", "replace", "delete"])
    type = serializers.ChoiceField(choices=["machine", "volume", "network", "firewall", "key", "address"])
    name = serializers.CharField()
    reason = serializers.CharField(allow_blank=True, help_text="Why a replace (or an odd delete) is needed.")
    fields = serializers.DictField(
        child=serializers.ListField(min_length=2, max_length=2, allow_null=True),
        help_text="Per field, [before, after].",
    )
    key = serializers.CharField(allow_blank=True, help_text="The document entry (hangar.stack.key).")
    id = serializers.UUIDField(allow_null=True, help_text="The existing resource, if any.")
    monthly_difference = serializers.DecimalField(
        max_digits=14, decimal_places=2, coerce_to_string=True, help_text="What this change adds to the monthly bill."
    )


class QuotaCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.CharField())


class CostSerializer(serializers.Serializer):
    currency = serializers.CharField()
    monthly_before = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    monthly_after = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    difference = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)


class PlanSerializer(serializers.ModelSerializer):
    changes = ChangeSerializer(many=True, read_only=True)
    quota = QuotaCheckSerializer(read_only=True)
    cost = CostSerializer(read_only=True)
    no_changes = serializers.BooleanField(read_only=True)

    class Meta:
        model = StackPlan
        fields = ["id", "stack", "created_at", "changes", "quota", "cost", "no_changes"]
        read_only_fields = fields


class PlanCreateSerializer(serializers.Serializer):
    document = serializers.JSONField(
        help_text="The stack document: YAML or JSON text, or the document itself as an object. Its JSON Schema is "
        "at /api/v1/stacks/schema/."
    )

    def validate_document(self, value):
        if not isinstance(value, str | dict):
            raise serializers.ValidationError("Send the document as YAML or JSON text, or as an object.")
        return value


class StepSerializer(serializers.Serializer):
    action = serializers.CharField()
    type = serializers.CharField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=RunState.choices)
    error = serializers.CharField(allow_blank=True)


class RunSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)
    plan = serializers.UUIDField(source="plan_id", read_only=True, allow_null=True)

    class Meta:
        model = StackRun
        fields = [
            "id",
            "stack",
            "kind",
            "state",
            "steps",
            "done",
            "total",
            "error",
            "plan",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RunBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = StackRun
        fields = ["id", "kind", "state", "done", "total", "error", "created_at", "finished_at"]
        read_only_fields = fields


class StackSerializer(serializers.Serializer):
    name = serializers.CharField()
    resources = serializers.IntegerField(help_text="How many resources carry the stack's label.")
    monthly_cost = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    last_run = RunBriefSerializer(allow_null=True)


class StackResourceSerializer(serializers.Serializer):
    type = serializers.CharField()
    key = serializers.CharField(allow_blank=True)
    id = serializers.UUIDField()
    name = serializers.CharField()
    detail = serializers.CharField(allow_blank=True)
    monthly_cost = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)


class StackDetailSerializer(serializers.Serializer):
    name = serializers.CharField()
    resources = StackResourceSerializer(many=True, source="rows")
    resource_count = serializers.IntegerField(source="resources")
    monthly_cost = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    last_run = RunBriefSerializer(allow_null=True)


class ExportSerializer(serializers.Serializer):
    document = serializers.CharField(help_text="The stack document, YAML.")
