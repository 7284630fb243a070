"""Stacks, their plans (a document compared with what exists) and their runs (a plan applied, or a destroy)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from tenants.models import TenantOwned

STACK_LABEL = "hangar.stack"
KEY_LABEL = "hangar.stack.key"


class Stack(TenantOwned):
    """A named set of resources carrying the label hangar.stack=<name>; made by its first apply, gone after destroy."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=40)
    region = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(Lower("name"), "tenant", name="stack_unique_name_per_tenant")]

    def __str__(self) -> str:
        return self.name


class StackPlan(TenantOwned):
    """What applying a document would change, with quota and cost, and the fingerprint of what it was compared with."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    stack = models.CharField(max_length=40)
    source = models.TextField(blank=True, help_text="The document as sent.")
    document = models.JSONField(help_text="The document, normalised.")
    changes = models.JSONField(default=list)
    quota = models.JSONField(default=dict)
    cost = models.JSONField(default=dict)
    # sha256 of the stack's resources as the plan saw them: applying is refused once they differ.
    fingerprint = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["tenant", "stack", "-created_at"], name="stackplan_tenant_stack")]

    def __str__(self) -> str:
        return f"Plan of {self.stack} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def no_changes(self) -> bool:
        return not self.changes


class RunKind(models.TextChoices):
    APPLY = "apply", "Apply"
    DESTROY = "destroy", "Destroy"


class RunState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class StackRun(TenantOwned):
    """One apply or destroy, carried out step by step by a worker; `steps` says how far it got and what failed."""

    Kind = RunKind
    State = RunState

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    stack = models.CharField(max_length=40)
    plan = models.ForeignKey(StackPlan, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.PENDING)
    # [{action, type, name, key, state, error, ...}] in the order they run.
    steps = models.JSONField(default=list)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    # When a worker last looked at it: an active run nobody looked at for a while is sent again (stacks_resume).
    advanced_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["tenant", "stack", "-created_at"], name="stackrun_tenant_stack")]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=RunState.values), name="stackrun_state_valid"),
            # One run at a time per stack: a second apply while one runs is refused by the database too.
            models.UniqueConstraint(
                Lower("stack"),
                "tenant",
                condition=models.Q(state__in=["pending", "running"]),
                name="stackrun_one_active_per_stack",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.stack}: {self.state}"

    @property
    def is_active(self) -> bool:
        return self.state in (RunState.PENDING, RunState.RUNNING)
