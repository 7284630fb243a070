"""Every change to stacks: plans, applying them step by step through the resources' own services, destroying.

A run is a list of steps carried out in dependency order (keys, networks and firewalls; machines going away; machines
made or changed, each after what it depends on; addresses; what the stack no longer declares). A worker advances it
one step at a time, each step in its own transaction; a step that waits for a machine (built, stopped, resized,
deleted) leaves the run `running` and the worker looks again a moment later. A failing step fails the run with the
step's number and error; what earlier steps did stays, labelled, so the next plan starts from there.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from compute import services as compute_services
from compute.models import Flavor, Image, Instance, InstanceState, Region
from compute.network import services as network_services
from compute.network.models import Firewall, PublicIP
from compute.network.services.firewalls import firewall_rules
from compute.stacks import document as documents
from compute.stacks.models import KEY_LABEL, STACK_LABEL, RunKind, RunState, Stack, StackPlan, StackRun
from compute.stacks.selectors import _querysets, stack_holdings, stack_plan_compute
from compute.storage.models import Volume, VolumeState
from compute.storage.services import volumes as storage_services
from portal.errors import Conflict, InvalidRequest, ServiceError, Unprocessable
from tenants.labels import labels_filter
from tenants.models import ActivityEntry, Tenant
from tenants.services import activity_record, user_check_verified

logger = logging.getLogger(__name__)

MAX_POLLS = 900  # a step that waits longer than this many looks (about 30 min) fails the run
WAIT = "wait"
DONE = "done"


def _activity(*, tenant_id, stack: str, action: str, label: str, user, message: str = "", outcome="succeeded"):
    activity_record(
        tenant_id=tenant_id,
        resource_type=ActivityEntry.ResourceType.STACK,
        resource_name=stack,
        action=action,
        action_label=label,
        actor=user,
        message=message,
        outcome=outcome,
    )


def _stored_document(doc: dict) -> dict:
    """The normalised document as JSON: firewall rules as documents write them."""
    stored = {**doc, "firewalls": {}}
    for name, spec in doc["firewalls"].items():
        stored["firewalls"][name] = {**spec, "rules": [documents.rule_dict(rule) for rule in spec["rules"]]}
    return stored


class DocumentRefused(InvalidRequest):
    """A document that cannot be planned: `details` lists each problem as {field, line, message}."""

    code = "invalid_document"

    def __init__(self, problems: list[documents.Problem]):
        first = problems[0]
        where = f" (line {first.line})" if first.line else ""
        more = f" and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''}" if len(problems) > 1 else ""
        super().__init__(
            f"The document is not valid: {first.field}{where}: {first.message}{more}",
            details=[problem.as_dict() for problem in problems],
        )
        self.problems = problems


def stack_plan_create(*, tenant: Tenant, user, source) -> StackPlan:
    """Reads and checks a document and stores what applying it would change (nothing else is written)."""
    try:
        parsed, doc = documents.read(source)
        plan = stack_plan_compute(tenant=tenant, parsed=parsed, doc=doc)
    except documents.DocumentInvalid as error:
        raise DocumentRefused(error.problems) from None
    return StackPlan.objects.create(
        tenant=tenant,
        stack=plan.stack,
        source=source if isinstance(source, str) else documents.dump_yaml(source),
        document=_stored_document(doc),
        changes=plan.changes,
        quota=plan.quota,
        cost=plan.cost,
        fingerprint=plan.fingerprint,
        created_by=user,
    )


def _current_fingerprint(plan: StackPlan) -> str:
    try:
        parsed, doc = documents.read(plan.source)
        if doc["stack"] != plan.stack:
            return ""
        return stack_plan_compute(tenant=plan.tenant, parsed=parsed, doc=doc).fingerprint
    except (documents.DocumentInvalid, ServiceError):
        return ""


def _steps_for_plan(plan: StackPlan) -> list[dict]:
    """The plan's changes as steps in the order they can run."""

    def step(change: dict, action: str, **extra) -> dict:
        return {
            "action": action,
            "type": change["type"],
            "name": change["name"],
            "key": change["key"],
            "id": change["id"],
            "fields": change["fields"],
            "state": "pending",
            "error": "",
            **extra,
        }

    by = {
        "early": [],
        "network": [],
        "volume_off": [],
        "machine_gone": [],
        "network_swap": [],
        "machine": [],
        "address": [],
        "volume": [],
        "late": [],
    }
    for change in plan.changes:
        kind, action = change["type"], change["action"]
        if kind == "volume":
            # Detached before any machine goes away; made, grown and attached once the machines run.
            if action in ("delete", "replace") or (action == "update" and "attached_to" in change["fields"]):
                by["volume_off"].append(step(change, "detach"))
            if action in ("delete", "replace"):
                by["volume_off"].append(step(change, "delete", replacing=action == "replace"))
            if action != "delete":
                by["volume"].append(step(change, "create" if action == "replace" else action))
        elif action == "delete":
            by["machine_gone" if kind == "machine" else "late"].append(step(change, "delete"))
        elif kind == "key":
            if action == "replace":
                by["early"].append(step(change, "delete", replacing=True))
                by["early"].append(step(change, "create", replacing=True))
            else:
                by["early"].append(step(change, action))
        elif kind in ("network", "firewall"):
            if action == "replace":
                by["network_swap"].append(step(change, "delete", replacing=True))
                by["network_swap"].append(step(change, "create", replacing=True))
            else:
                by["network"].append(step(change, action))
        elif kind == "machine":
            if action == "replace":
                by["machine_gone"].append(step(change, "delete", replacing=True))
                by["machine"].append(step(change, "create", replacing=True))
            else:
                by["machine"].append(step(change, action))
        else:
            by["address"].append(step(change, action))
    late_order = {"address": 0, "firewall": 1, "network": 2, "key": 3, "machine": 4}
    by["late"].sort(key=lambda s: late_order[s["type"]])
    return [s for group in by.values() for s in group]


def stack_plan_apply(*, plan: StackPlan, user) -> StackRun:
    """Starts applying a plan: refused (409 plan_stale) when the stack's resources changed since it was made, 422
    when the quota does not allow it, 409 while another run of the stack is in progress."""
    user_check_verified(user=user, verb="apply a stack")
    tenant = Tenant.objects.get(pk=plan.tenant_id)
    if not tenant.accepts_new_resources:
        raise Unprocessable(f"{tenant.name} is {tenant.get_status_display().lower()}.", code="tenant_not_active")
    if not plan.quota.get("ok", True):
        raise Unprocessable(
            "The quota does not allow this plan: " + " ".join(plan.quota.get("problems", [])), code="quota_exceeded"
        )
    if _current_fingerprint(plan) != plan.fingerprint:
        raise Conflict(
            f"The resources of stack {plan.stack} changed since this plan was made; make a new plan.",
            code="plan_stale",
        )
    steps = _steps_for_plan(plan)
    with transaction.atomic():
        stack, _ = Stack.objects.get_or_create(
            tenant=tenant, name=plan.stack, defaults={"region": plan.document.get("region") or ""}
        )
        run = _run_create(tenant=tenant, user=user, stack=plan.stack, kind=RunKind.APPLY, steps=steps, plan=plan)
        Stack.objects.filter(pk=stack.pk).update(updated_at=timezone.now())
        summary = ", ".join(f"{c['action']} {c['type']} {c['name']}" for c in plan.changes[:10]) or "no changes"
        _activity(
            tenant_id=tenant.pk,
            stack=plan.stack,
            action="stack_apply",
            label="Stack applied",
            user=user,
            message=summary,
        )
    return run


def _run_create(*, tenant, user, stack: str, kind: str, steps: list[dict], plan=None) -> StackRun:
    now = timezone.now()
    finished = not steps
    try:
        with transaction.atomic():
            run = StackRun.objects.create(
                tenant=tenant,
                stack=stack,
                plan=plan,
                kind=kind,
                state=RunState.SUCCEEDED if finished else RunState.PENDING,
                steps=steps,
                total=len(steps),
                created_by=user,
                created_at=now,
                started_at=now if finished else None,
                finished_at=now if finished else None,
            )
    except IntegrityError:
        raise Conflict(
            f"Stack {stack} is being changed by another run; wait for it to finish.", code="run_in_progress"
        ) from None
    if not finished:
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id, countdown: float | None = None) -> None:
    from compute.stacks import tasks

    try:
        if countdown:
            tasks.stack_run_advance.apply_async(kwargs={"run_id": str(run_id)}, countdown=countdown)
        else:
            tasks.stack_run_advance.delay(run_id=str(run_id))
    except OSError:
        logger.exception("Could not enqueue stack run %s", run_id)


def stack_destroy(*, tenant: Tenant, user, name: str) -> StackRun:
    """Deletes every resource of the stack: volumes detached first, machines, then volumes, addresses, firewalls,
    networks and keys."""
    stack = Stack.objects.for_tenant(tenant).filter(name__iexact=name).first()
    if stack is None:
        raise InvalidRequest(f"There is no stack {name}.", code="not_found")
    holdings = stack_holdings(tenant=tenant, stack=stack.name)
    steps = []
    order = ("volume", "machine", "volume", "address", "firewall", "network", "key")
    groups = holdings.by_type()
    for position, kind in enumerate(order):
        items = [(key, obj) for key, obj in groups[kind].items()]
        items += [("", obj) for k, obj in holdings.strays if k == kind]
        for key, obj in items:
            if position == 0 and obj.instance_id is None:
                continue
            steps.append(
                {
                    "action": "detach" if position == 0 else "delete",
                    "type": kind,
                    "name": obj.address if kind == "address" else obj.name,
                    "key": key,
                    "id": str(obj.pk),
                    "fields": {},
                    "state": "pending",
                    "error": "",
                }
            )
    with transaction.atomic():
        run = _run_create(tenant=tenant, user=user, stack=stack.name, kind=RunKind.DESTROY, steps=steps)
        if not steps:
            Stack.objects.filter(pk=stack.pk).delete()
        _activity(
            tenant_id=tenant.pk,
            stack=stack.name,
            action="stack_destroy",
            label="Stack destroyed",
            user=user,
            message=f"{len(steps)} resources",
        )
    return run


# --- the worker's side -------------------------------------------------------------------------------------------


def stack_run_advance(*, run_id) -> str:
    """Carries a run forward as far as it can go now: DONE when it finished (or failed), WAIT when a step waits."""
    with transaction.atomic():
        claimed = StackRun.objects.filter(pk=run_id, state=RunState.PENDING).update(
            state=RunState.RUNNING, started_at=timezone.now()
        )
        if claimed:
            logger.info("Stack run %s started", run_id)
    while True:
        with transaction.atomic():
            run = StackRun.objects.select_for_update().filter(pk=run_id).first()
            if run is None or run.state != RunState.RUNNING:
                return DONE
            position = next((i for i, s in enumerate(run.steps) if s["state"] != "succeeded"), None)
            if position is None:
                _run_finished(run)
                return DONE
            step = run.steps[position]
            step["state"] = "running"
            try:
                with transaction.atomic():
                    outcome = _perform(run, step)
            except ServiceError as error:
                _run_failed(run, position, error.message)
                return DONE
            except (Flavor.DoesNotExist, Image.DoesNotExist, Region.DoesNotExist) as error:
                _run_failed(run, position, str(error))
                return DONE
            run.advanced_at = timezone.now()
            if outcome == WAIT:
                step["polls"] = step.get("polls", 0) + 1
                if step["polls"] > MAX_POLLS:
                    _run_failed(run, position, "Gave up waiting for it to finish.")
                    return DONE
                run.save(update_fields=["steps", "advanced_at"])
                transaction.on_commit(lambda: _enqueue(run_id, countdown=2))
                return WAIT
            step["state"] = "succeeded"
            step["error"] = ""
            run.done = sum(1 for s in run.steps if s["state"] == "succeeded")
            run.save(update_fields=["steps", "done", "advanced_at"])


def stacks_resume(*, now=None, idle_seconds: int = 60) -> int:
    """Sends again every active run that no worker looked at for `idle_seconds` (its message was lost: the broker
    was down, a worker died); returns how many. Advancing a run twice at once is harmless (each step is taken under
    the run's row lock)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=idle_seconds)
    stale = StackRun.objects.filter(state__in=[RunState.PENDING, RunState.RUNNING]).filter(
        Q(advanced_at__lt=cutoff) | Q(advanced_at__isnull=True, created_at__lt=cutoff)
    )
    run_ids = list(stale.values_list("pk", flat=True))
    if run_ids:
        # Marked as looked at now, so the next sweep does not send them again before a worker had its turn.
        StackRun.objects.filter(pk__in=run_ids).update(advanced_at=now)
        for run_id in run_ids:
            transaction.on_commit(lambda run_id=run_id: _enqueue(run_id))
    return len(run_ids)


def _run_finished(run: StackRun) -> None:
    run.state = RunState.SUCCEEDED
    run.finished_at = timezone.now()
    run.done = run.total
    run.save(update_fields=["state", "finished_at", "done"])
    if run.kind == RunKind.DESTROY:
        Stack.objects.for_tenant(run.tenant).filter(name=run.stack).delete()
    else:
        Stack.objects.for_tenant(run.tenant).filter(name=run.stack).update(updated_at=run.finished_at)


def _run_failed(run: StackRun, position: int, message: str) -> None:
    step = run.steps[position]
    step["state"] = "failed"
    step["error"] = message
    run.state = RunState.FAILED
    run.error = f"Step {position + 1} of {run.total} ({step['action']} {step['type']} {step['name']}) failed: {message}"
    run.finished_at = timezone.now()
    run.save(update_fields=["steps", "state", "error", "finished_at"])
    _activity(
        tenant_id=run.tenant_id,
        stack=run.stack,
        action=f"stack_{run.kind}",
        label=f"Stack {run.get_kind_display().lower()} failed",
        user=None,
        message=run.error,
        outcome="failed",
    )


# --- one step ----------------------------------------------------------------------------------------------------


class _Context:
    def __init__(self, run: StackRun):
        self.run = run
        self.tenant = Tenant.objects.get(pk=run.tenant_id)
        self.user = run.created_by
        self.doc = run.plan.document if run.plan_id else {}
        self.querysets = _querysets(self.tenant)

    def labels(self, key: str, extra: dict | None = None) -> dict:
        return {**(extra or {}), STACK_LABEL: self.run.stack, KEY_LABEL: key}

    def find(self, kind: str, key: str):
        """The stack's resource made for `key` (also one an interrupted step made before it could say so)."""
        return labels_filter(self.querysets[kind], [(STACK_LABEL, self.run.stack), (KEY_LABEL, key)]).first()

    def by_id(self, kind: str, pk):
        if not pk:
            return None
        return self.querysets[kind].filter(pk=pk).first()

    def region(self) -> Region:
        name = self.doc.get("region")
        return Region.objects.get(name=name) if name else Region.objects.default_or_create()


def _perform(run: StackRun, step: dict) -> str:
    context = _Context(run)
    handler = {
        "key": _key_step,
        "network": _network_step,
        "firewall": _network_step,
        "machine": _machine_step,
        "address": _address_step,
        "volume": _volume_step,
    }[step["type"]]
    return handler(context, step)


def _stack_labels_kept(context: _Context, obj, key: str) -> dict:
    user_labels = {k: v for k, v in (obj.labels or {}).items() if not k.startswith("hangar.")}
    return context.labels(key, user_labels)


def _key_step(context: _Context, step: dict) -> str:
    key = step["key"]
    if step["action"] == "delete":
        obj = context.by_id("key", step["id"])
        if obj is not None:
            compute_services.sshkey_delete(key=obj, user=context.user)
        return DONE
    spec = context.doc["keys"][key]
    obj = context.find("key", key)
    if step["action"] == "create":
        if obj is None:
            compute_services.sshkey_create(
                tenant=context.tenant,
                user=context.user,
                name=spec["name"],
                public_key=spec["public_key"],
                labels=context.labels(key),
            )
        return DONE
    obj = obj or context.by_id("key", step["id"])
    compute_services.resource_labels_set(resource=obj, user=context.user, labels=_stack_labels_kept(context, obj, key))
    return DONE


def _network_step(context: _Context, step: dict) -> str:
    kind, key = step["type"], step["key"]
    if step["action"] == "delete":
        obj = context.by_id(kind, step["id"])
        if obj is None:
            return DONE
        if kind == "network":
            if obj.ports.exists():
                return WAIT  # its machines are still being deleted
            network_services.network_delete(network=obj, user=context.user)
        else:
            if obj.instances.exclude(state=InstanceState.DELETED).exists():
                return WAIT
            network_services.firewall_delete(firewall=obj, user=context.user)
        return DONE
    section = "networks" if kind == "network" else "firewalls"
    spec = context.doc[section][key]
    obj = context.find(kind, key)
    rules = documents._rules(spec["rules"]) if kind == "firewall" else None
    if step["action"] == "create":
        if obj is None:
            if kind == "network":
                network_services.network_create(
                    tenant=context.tenant,
                    user=context.user,
                    name=spec["name"],
                    cidr=spec["cidr"],
                    region=context.region(),
                    labels=context.labels(key),
                )
            else:
                network_services.firewall_create(
                    tenant=context.tenant,
                    user=context.user,
                    name=spec["name"],
                    description=spec["description"],
                    rules=rules,
                    labels=context.labels(key),
                )
        return DONE
    obj = obj or context.by_id(kind, step["id"])
    if kind == "network":
        if obj.name != spec["name"]:
            obj = network_services.network_rename(network=obj, user=context.user, name=spec["name"])
    else:
        current = [documents.rule_dict(rule) for rule in firewall_rules(obj)]
        changed_rules = current != spec["rules"]
        if obj.name != spec["name"] or obj.description != spec["description"] or changed_rules:
            obj = network_services.firewall_update(
                firewall=obj,
                user=context.user,
                name=spec["name"],
                description=spec["description"],
                rules=rules if changed_rules else None,
            )
    compute_services.resource_labels_set(resource=obj, user=context.user, labels=_stack_labels_kept(context, obj, key))
    return DONE


def _machine_spec(context: _Context, key: str) -> tuple[dict, str]:
    name, _, index = key.rpartition(".")
    spec = context.doc["machines"][name]
    machine = dict(documents.machine_names(name, spec))[int(index)]
    return spec, machine


def _resolve(context: _Context, kind: str, refs: list[str]) -> list:
    found = []
    for ref in refs:
        obj = context.find(kind, ref)
        if obj is None:
            raise Conflict(f"The stack's {kind} {ref} does not exist (yet).", code="missing_dependency")
        found.append(obj)
    return found


def _machine_step(context: _Context, step: dict) -> str:
    key = step["key"]
    if step["action"] == "delete":
        return _machine_delete(context, step)
    spec, machine = _machine_spec(context, key)
    if step["action"] == "create":
        return _machine_create(context, step, spec, machine)
    return _machine_update(context, step, spec, machine)


def _machine_delete(context: _Context, step: dict) -> str:
    obj = Instance.objects.for_tenant(context.tenant).filter(pk=step["id"]).first() if step["id"] else None
    if obj is None or obj.state == InstanceState.DELETED:
        return DONE
    if obj.state == InstanceState.DELETING:
        return WAIT
    if obj.is_transitional:
        return WAIT  # a build or an action in progress: delete once it settles
    compute_services.instance_delete(instance=obj, user=context.user)
    return WAIT


def _machine_wait_built(obj: Instance) -> str:
    if obj.state in (InstanceState.RUNNING, InstanceState.STOPPED):
        return DONE
    if obj.state == InstanceState.ERROR:
        raise Unprocessable(f"{obj.name} failed to build: {obj.error_reason or 'no reason given'}", code="build_failed")
    return WAIT


def _machine_create(context: _Context, step: dict, spec: dict, machine: str) -> str:
    obj = context.find("machine", step["key"])
    if obj is not None and obj.state != InstanceState.DELETED:
        return _machine_wait_built(obj)
    keys = _resolve(context, "key", spec["keys"])
    networks = _resolve(context, "network", spec["networks"])
    firewalls = _resolve(context, "firewall", spec["firewalls"])
    compute_services.instance_launch(
        tenant=context.tenant,
        user=context.user,
        name=machine,
        flavor=Flavor.objects.active().get(name=spec["flavor"]),
        image=Image.objects.active().get(name=spec["image"]),
        keys=keys,
        networks=networks,
        firewalls=firewalls,
        user_data=spec["user_data"],
        region=context.region(),
        labels=context.labels(step["key"], spec["labels"]),
    )
    return WAIT


def _machine_update(context: _Context, step: dict, spec: dict, machine: str) -> str:
    obj = context.find("machine", step["key"]) or Instance.objects.for_tenant(context.tenant).get(pk=step["id"])
    phase = step.get("phase", "settings")
    user = context.user
    if phase == "settings":
        if obj.is_transitional:
            return WAIT
        if obj.name != machine:
            obj = compute_services.instance_rename(instance=obj, user=user, name=machine)
        firewalls = _resolve(context, "firewall", spec["firewalls"]) if spec["firewalls"] else None
        if firewalls is None:
            default = Firewall.objects.for_tenant(context.tenant).filter(is_default=True).first()
            firewalls = [default] if default else []
        if sorted(str(f.pk) for f in firewalls) != sorted(str(f.pk) for f in obj.firewalls.all()) and firewalls:
            obj = network_services.instance_firewalls_set(instance=obj, firewalls=firewalls, user=user)
        compute_services.resource_labels_set(
            resource=obj, user=user, labels=context.labels(step["key"], spec["labels"])
        )
        step["phase"] = phase = "size"
    if phase == "size":
        if obj.flavor.name == spec["flavor"]:
            return DONE
        if obj.is_transitional:
            return WAIT
        if obj.state == InstanceState.RUNNING:
            step["restart"] = True
            compute_services.instance_stop(instance=obj, user=user)
            return WAIT
        if obj.state != InstanceState.STOPPED:
            raise Unprocessable(f"{obj.name} is {obj.state}: it cannot be resized.", code="invalid_state")
        compute_services.instance_resize(
            instance=obj, user=user, flavor=Flavor.objects.active().get(name=spec["flavor"])
        )
        step["phase"] = "resizing"
        return WAIT
    if phase == "resizing":
        if obj.is_transitional:
            return WAIT
        if obj.state == InstanceState.ERROR:
            raise Unprocessable(f"Resizing {obj.name} failed: {obj.error_reason}", code="resize_failed")
        if step.get("restart") and obj.state == InstanceState.STOPPED:
            compute_services.instance_start(instance=obj, user=user)
            step["phase"] = "starting"
            return WAIT
        return DONE
    if obj.is_transitional:
        return WAIT
    return DONE


def _address_step(context: _Context, step: dict) -> str:
    key = step["key"]
    user = context.user
    if step["action"] == "delete":
        obj = PublicIP.objects.for_tenant(context.tenant).held().filter(pk=step["id"]).first()
        if obj is not None:
            network_services.public_ip_release(public_ip=obj, user=user)
        return DONE
    target = _address_target(context, key)
    obj = context.find("address", key)
    if obj is None:
        if step["action"] == "update":
            obj = PublicIP.objects.for_tenant(context.tenant).held().filter(pk=step["id"]).first()
        if obj is None:
            network_services.public_ip_allocate(
                tenant=context.tenant,
                user=user,
                instance=target,
                region=None if target is not None else context.region(),
                labels=context.labels(key),
            )
            return DONE
    if target is None and obj.instance_id is not None:
        network_services.public_ip_unassign(public_ip=obj, user=user)
    elif target is not None and obj.instance_id != target.pk:
        network_services.public_ip_assign(public_ip=obj, instance=target, user=user)
    return DONE


def _volume_step(context: _Context, step: dict) -> str:
    """Detach, delete, or make and converge one volume: each waits while the volume (or its machine) is busy."""
    user = context.user
    if step["action"] in ("detach", "delete"):
        obj = Volume.objects.for_tenant(context.tenant).filter(pk=step["id"]).first() if step["id"] else None
        if obj is None or obj.state == VolumeState.DELETED:
            return DONE
        if obj.is_transitional:
            return WAIT
        if obj.instance_id is not None and obj.state == VolumeState.IN_USE:
            storage_services.volume_detach(volume=obj, user=user)
            return WAIT
        if step["action"] == "detach":
            return DONE
        storage_services.volume_delete(volume=obj, user=user)
        return WAIT
    key = step["key"]
    spec = context.doc["volumes"][key]
    obj = context.find("volume", key) or (
        Volume.objects.for_tenant(context.tenant).filter(pk=step["id"]).first() if step["action"] == "update" else None
    )
    if obj is None:
        storage_services.volume_create(
            tenant=context.tenant,
            user=user,
            name=key,
            size_gib=spec["size_gib"],
            region=context.region(),
            labels=context.labels(key, spec["labels"]),
        )
        return WAIT
    if obj.state == VolumeState.ERROR:
        raise Unprocessable(f"Volume {obj.name} failed: {obj.error_reason or 'no reason given'}", code="volume_failed")
    if obj.is_transitional:
        return WAIT
    wanted_labels = context.labels(key, spec["labels"])
    if obj.labels != wanted_labels:
        obj = storage_services.volume_update(volume=obj, user=user, labels=wanted_labels)
    if obj.size_gib < spec["size_gib"]:
        storage_services.volume_extend(volume=obj, user=user, size_gib=spec["size_gib"])
        return WAIT
    target_key = documents.machine_key(context.doc, spec["attach_to"])
    target = context.find("machine", target_key) if target_key else None
    if target_key and target is None:
        raise Conflict(f"The machine for volume {key} does not exist.", code="missing_dependency")
    if obj.instance_id is not None and (target is None or obj.instance_id != target.pk):
        storage_services.volume_detach(volume=obj, user=user)
        return WAIT
    if target is not None and obj.instance_id is None:
        if target.state != InstanceState.RUNNING and target.is_transitional:
            return WAIT  # attached once its machine has settled
        storage_services.volume_attach(volume=obj, instance=target, user=user)
        return WAIT
    return DONE


def _address_target(context: _Context, key: str) -> Instance | None:
    if key in context.doc["addresses"]:
        ref = context.doc["addresses"][key]["assign_to"]
        if ref is None:
            return None
        machine_key = f"{ref}.1" if ref in context.doc["machines"] else None
        if machine_key is None:
            for name, spec in context.doc["machines"].items():
                for index, machine in documents.machine_names(name, spec):
                    if machine == ref:
                        machine_key = f"{name}.{index}"
    else:
        machine_key = key.rpartition("/")[0]
    obj = context.find("machine", machine_key)
    if obj is None:
        raise Conflict(f"The machine for {key} does not exist.", code="missing_dependency")
    return obj


__all__ = [
    "DocumentRefused",
    "stack_destroy",
    "stack_plan_apply",
    "stack_plan_create",
    "stack_run_advance",
    "stacks_resume",
]
