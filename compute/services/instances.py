"""Instance requests (one function per transition) and the outcome recorders the worker tasks call.

Requests (launch, start, stop, …) lock the instance, check the guard, move it into a transitional state, write
an InstanceEvent and enqueue the worker's task when the transaction commits. Workers report back through the
outcome recorders (`instance_build_succeeded`, `instance_action_failed`, …), which are no-ops when the
instance has already moved on: a duplicate delivery records nothing twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.utils import timezone

from compute import catalog, lifecycle
from compute.drivers.base import DomainInfo, PowerState
from compute.metrics import PROVISIONING_SECONDS
from compute.models import (
    INSTANCE_ACTIONS,
    INSTANCE_NAME_CONSTRAINT,
    TASK_DEADLINES,
    TASK_STATES,
    EventAction,
    Flavor,
    Host,
    Image,
    Instance,
    InstanceEvent,
    InstanceState,
    InstanceTask,
    Region,
    SSHKey,
    validate_instance_name,
)
from compute.network import services as network_services
from compute.network.cloudinit import clean_user_data
from compute.network.models import Firewall, Network
from compute.rules import (
    image_fit_refusal,
    launch_quota_request,
    quota_refusal,
    resize_quota_request,
    resize_refusal,
    standing_refusal,
)
from compute.scheduler import claim_resize, schedule
from compute.services import usage
from compute.storage import services as storage_services
from portal import sql
from portal.errors import Conflict, InvalidRequest, Unprocessable
from tenants.labels import labels_checked
from tenants.models import ActivityEntry, EventResult, Quota, Tenant
from tenants.services import activity_entry_for_event, activity_record, quota_lock, user_check_verified

logger = logging.getLogger(__name__)

INSTANCE_RESOURCE = ActivityEntry.ResourceType.INSTANCE
TASK_FIELDS = ["task", "task_params", "task_enqueued_at", "task_progress_at", "task_deadline", "task_requeues"]

# The event action each task reports under.
TASK_ACTIONS = {
    InstanceTask.BUILD: EventAction.BUILD,
    InstanceTask.START: EventAction.START,
    InstanceTask.STOP: EventAction.STOP,
    InstanceTask.REBOOT: EventAction.REBOOT,
    InstanceTask.RESIZE: EventAction.RESIZE,
    InstanceTask.MIGRATE: EventAction.MIGRATE,
    InstanceTask.RESTORE: EventAction.RESTORE,
    InstanceTask.DELETE: EventAction.DELETE,
}

# --- helpers ---------------------------------------------------------------------------------------------------


def _event(instance: Instance, action: str, result: str, *, user=None, message: str = "", at=None) -> InstanceEvent:
    rows = _event_rows(instance, action, result, user=user, message=message, at=at)
    sql.insert_objects(rows)
    return rows[0]


def _event_rows(instance: Instance, action: str, result: str, *, user=None, message: str = "", at=None) -> list:
    """The machine's event and, for what someone asked for (or was refused), its activity entry, not yet written;
    workers' outcomes stay in the machine's log."""
    event = InstanceEvent(
        tenant_id=instance.tenant_id,
        instance=instance,
        action=action,
        result=result,
        actor=user,
        message=message,
        created_at=at or timezone.now(),
    )
    if user is not None or (result in (EventResult.REQUESTED, EventResult.REFUSED) and action != EventAction.RECONCILE):
        entry = activity_entry_for_event(
            event, resource_type=INSTANCE_RESOURCE, resource_id=instance.pk, resource_name=instance.name
        )
        return [event, entry]
    return [event]


def _dispatch(instance_id: str, task: str) -> None:
    """Publishes the worker task; if the broker is unreachable the reconciler re-enqueues it later."""
    from compute.tasks import enqueue

    try:
        enqueue(instance_id=instance_id, task=task)
    except Exception:
        logger.exception("Could not enqueue %s for instance %s; the reconciler will retry.", task, instance_id)


def _set_task(instance: Instance, task: str, *, params: dict | None = None, now=None) -> None:
    """Records the work the instance now waits for and enqueues it once the transaction commits."""
    now = now or timezone.now()
    instance.task = task
    instance.task_params = params or {}
    instance.task_enqueued_at = now
    instance.task_progress_at = None
    instance.task_deadline = now + TASK_DEADLINES[task]
    instance.task_requeues = 0
    instance_id = str(instance.pk)
    transaction.on_commit(lambda: _dispatch(instance_id, task))


def _clear_task(instance: Instance) -> None:
    instance.task = InstanceTask.NONE
    instance.task_params = {}
    instance.task_enqueued_at = None
    instance.task_progress_at = None
    instance.task_deadline = None
    instance.task_requeues = 0


def _lock(instance: Instance | str) -> Instance:
    pk = instance.pk if isinstance(instance, Instance) else instance
    # Only the instance's row: locking its flavor's and image's rows too would make every launch of that size wait
    # (its insert checks the flavor key) for a worker recording an outcome, and the outcome waits for the launch's
    # quota row. Its flavor and image come from the catalog in memory.
    return catalog.attach(Instance.objects.select_for_update().get(pk=pk))


def _refusal(instance: Instance, verb: str, allowed: str) -> Conflict:
    """The error for an action the instance's state does not allow; names the state."""
    state = instance.get_state_display().lower()
    if instance.is_transitional:
        message = f"{instance.name} is {state}; wait until that has finished, then {verb} it."
    elif instance.state == InstanceState.DELETED:
        message = f"{instance.name} has been deleted."
    else:
        message = f"{instance.name} is {state}; only {allowed} instance can be {_past(verb)}."
    return Conflict(message, code="instance_busy", details={"state": instance.state})


def _past(verb: str) -> str:
    past = {"stop": "stopped", "reboot": "rebooted", "resize": "resized", "delete": "deleted", "start": "started"}
    past |= {"retry": "retried", "move": "moved"}
    return past.get(verb, verb + "ed")


def _refuse(instance: Instance, action: str, user, refusal: Conflict) -> None:
    """Logs a refused request; called after the request's transaction, so the refusal row survives."""
    _event(instance, action, EventResult.REFUSED, user=user, message=refusal.message)
    raise refusal


def _request_transition(
    *,
    instance: Instance,
    user,
    action: str,
    transition: str,
    verb: str,
    params: dict | None = None,
    message: str = "",
    prepare=None,
) -> Instance:
    """The common shape of a user request: lock, guard (INSTANCE_ACTIONS), state change, event, enqueue on commit."""
    task = INSTANCE_ACTIONS[transition].task
    with transaction.atomic():
        locked = _lock(instance)
        refusal = None if locked.can(transition) else _refusal(locked, verb, INSTANCE_ACTIONS[transition].allowed_label)
        if refusal is None:
            now = timezone.now()
            update_fields = ["state", "updated_at", *TASK_FIELDS]
            if prepare is not None:
                update_fields += prepare(locked, now)
            locked.state = TASK_STATES[task][0]
            _set_task(locked, task, params=params, now=now)
            locked.save(update_fields=update_fields)
            _event(locked, action, EventResult.REQUESTED, user=user, message=message, at=now)
    if refusal is not None:
        _refuse(locked, action, user, refusal)
    return locked


def _check_quota(*, quota: Quota, requested: dict[str, int]) -> None:
    """Checks against the locked quota row's running totals."""
    refusal = quota_refusal(usage=usage.quota_held(quota), requested=requested)
    if refusal is not None:
        raise refusal


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidRequest("Give the instance a name.", code="invalid_name", details={"field": "name"})
    if len(name) > 63:
        raise InvalidRequest(
            "The name is too long: at most 63 characters.", code="invalid_name", details={"field": "name"}
        )
    try:
        validate_instance_name(name)
    except ValidationError as error:
        raise InvalidRequest(error.messages[0], code="invalid_name", details={"field": "name"}) from None
    return name


def _check_accepts_new_resources(tenant: Tenant, verb: str) -> None:
    if (refusal := standing_refusal(tenant=tenant, what=f"no machines can be {verb}")) is not None:
        raise refusal


def _check_name_free(*, tenant: Tenant, name: str, exclude=None) -> None:
    taken = Instance.objects.for_tenant(tenant).live().filter(name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise InvalidRequest(
            f"You already have an instance called {name}; pick another name.",
            code="name_taken",
            details={"field": "name"},
        )


# --- instance requests -----------------------------------------------------------------------------------------


def _launch_region(region: Region | None) -> Region:
    if region is None:
        region = catalog.default_region()
        if region is None:
            raise Unprocessable("No region is open for launches yet.", code="no_region")
    elif not isinstance(region, Region):
        raise InvalidRequest("That region does not exist; pick another.", code="invalid_region")
    return region


def instance_launch(
    *,
    tenant: Tenant,
    user,
    name: str,
    flavor: Flavor,
    image: Image,
    keys: Iterable[SSHKey] = (),
    networks: Iterable[Network] = (),
    firewalls: Iterable[Firewall] = (),
    user_data: str = "",
    public_ip: bool = False,
    region: Region | None = None,
    labels: dict | None = None,
    disk_source: dict | None = None,
) -> Instance:
    """Reserves quota, a host of `region` (the default one if None) and the machine's addresses and enqueues its
    build; it starts `pending`. No host with room in the region: refused here, before anything is billed.

    Without `networks` it joins the tenant's default network of the region, without `firewalls` it gets the default
    firewall; `user_data` is a cloud-config document or a script; `public_ip` allocates and assigns a new address.
    """
    user_check_verified(user=user, verb="launch a machine")
    _check_accepts_new_resources(tenant, "launched")
    name = _clean_name(name)
    region = _launch_region(region)
    user_data = clean_user_data(user_data)
    labels = labels_checked(labels)
    networks = network_services.networks_check(tenant_id=tenant.pk, networks=networks, region=region)
    firewalls = list(firewalls)
    if firewalls:
        firewalls = network_services.firewalls_check(tenant_id=tenant.pk, firewalls=firewalls)
    if not isinstance(flavor, Flavor) or not flavor.active:
        raise InvalidRequest("That size is not available; pick another.", code="invalid_flavor")
    if not isinstance(image, Image) or (image.tenant_id not in (None, tenant.pk)):
        raise InvalidRequest("That image is not available; pick another.", code="invalid_image")
    # A restored disk does not come from the image (which may have left the catalog since): it only names the OS.
    if not disk_source and (not image.active or image.state != Image.State.AVAILABLE):
        raise InvalidRequest("That image is not available; pick another.", code="invalid_image")
    place_on = Host.objects.get(pk=disk_source["host"]) if disk_source else image.host
    if place_on is not None and place_on.region_id != region.pk:
        raise InvalidRequest(
            f"{disk_source['name'] if disk_source else image.name} is kept in another region than "
            f"{region.label or region.name}; launch it in {place_on.region.label or place_on.region.name}.",
            code="invalid_region",
            details={"field": "region"},
        )
    if not image.available_in(region):
        raise InvalidRequest(
            f"{image.name} is not available in {region.label or region.name}; pick another image or region.",
            code="invalid_image",
            details={"field": "image"},
        )
    if (refusal := image_fit_refusal(image=image, flavor=flavor)) is not None:
        raise refusal
    keys = list(keys)
    for key in keys:
        if not isinstance(key, SSHKey) or key.tenant_id != tenant.pk:
            raise InvalidRequest("One of the SSH keys is not one of yours.", code="invalid_key")
    snapshot = [key.snapshot() for key in sorted({key.pk: key for key in keys}.values(), key=lambda k: k.name)]
    with transaction.atomic():
        # Quota, then addresses (under the quota row's lock), then the host: the host's row stays locked from its
        # claim to the commit, so it is claimed last. Both reservations add the machine to the running totals.
        usage.quota_reserve(tenant=tenant, requested=launch_quota_request(flavor=flavor))
        networking = network_services.instance_networking_plan(
            tenant=tenant, user=user, region=region, networks=networks, firewalls=firewalls
        )
        host = schedule(flavor=flavor, region=region, reserve=True, only=place_on)
        now = timezone.now()
        instance = Instance(
            tenant=tenant,
            region=region,
            name=name,
            flavor=flavor,
            image=image,
            host=host,
            state=InstanceState.PENDING,
            private_ip=networking.private_ip,
            ssh_keys=snapshot,
            user_data=user_data,
            labels=labels,
            created_by=user,
            created_at=now,
            disk_source=disk_source or {},
        )
        instance._usage_reserved = True
        _set_task(instance, InstanceTask.BUILD, now=now)
        logged = _event_rows(
            instance,
            EventAction.LAUNCH,
            EventResult.REQUESTED,
            user=user,
            message=f"{flavor.name} ({flavor.size_label}, {flavor.disk_gib} GiB disk) with {image.name}"
            + (f", restored from {disk_source['name']}" if disk_source else ""),
            at=now,
        )
        try:
            # One statement writes the machine, its event and activity entry, its interfaces and firewall links. The
            # unique index on live names is the check: a taken name fails it, and the whole launch (with its claim on
            # the host) rolls back.
            sql.insert_objects(
                [instance, *logged, *network_services.instance_networking_rows(instance=instance, plan=networking)]
            )
        except IntegrityError as error:
            if sql.constraint_violated(error) != INSTANCE_NAME_CONSTRAINT:
                raise
            raise InvalidRequest(
                f"You already have an instance called {name}; pick another name.",
                code="name_taken",
                details={"field": "name"},
            ) from None
        if public_ip:
            instance.public_address = network_services.public_ip_allocate(
                tenant=tenant, user=user, instance=instance
            ).address
    return instance


def instance_start(*, instance: Instance, user) -> Instance:
    """A suspended tenant's machines stay off (billing stopped them) until the account is settled."""
    tenant = Tenant.objects.get(pk=instance.tenant_id)
    if tenant.status == Tenant.Status.SUSPENDED:
        raise Unprocessable(
            f"{tenant.name} is suspended: machines cannot be started until the account is settled.",
            code="tenant_suspended",
            details={"status": tenant.status},
        )
    return _request_transition(
        instance=instance,
        user=user,
        action=EventAction.START,
        transition="start",
        verb="start",
    )


def instance_stop(*, instance: Instance, user, force: bool = False) -> Instance:
    """A graceful shutdown; `force` cuts the power, and may also take over a graceful stop that hangs."""
    return _request_transition(
        instance=instance,
        user=user,
        action=EventAction.FORCE_STOP if force else EventAction.STOP,
        transition="force_stop" if force else "stop",
        verb="stop",
        params={"force": True} if force else {},
    )


def instance_reboot(*, instance: Instance, user) -> Instance:
    return _request_transition(
        instance=instance,
        user=user,
        action=EventAction.REBOOT,
        transition="reboot",
        verb="reboot",
    )


def instance_resize(*, instance: Instance, user, flavor: Flavor) -> Instance:
    """Only a stopped instance, to another active flavor whose disk is not smaller; quota and host room checked.

    A tenant on hold or suspended cannot resize (a bigger size is new spending).
    """
    _check_accepts_new_resources(Tenant.objects.get(pk=instance.tenant_id), "resized")
    if not isinstance(flavor, Flavor) or not flavor.active:
        raise InvalidRequest("That size is not available; pick another.", code="invalid_flavor")

    def prepare(locked: Instance, now) -> list[str]:
        if (refusal := resize_refusal(instance=locked, flavor=flavor)) is not None:
            raise refusal
        quota = quota_lock(locked.tenant)
        _check_quota(quota=quota, requested=resize_quota_request(current=locked.flavor, flavor=flavor))
        claim_resize(instance=locked, flavor=flavor)
        locked.resize_flavor = flavor
        return ["resize_flavor"]

    return _request_transition(
        instance=instance,
        user=user,
        action=EventAction.RESIZE,
        transition="resize",
        verb="resize",
        message=f"to {flavor.name} ({flavor.size_label}, {flavor.disk_gib} GiB disk)",
        prepare=prepare,
    )


def instance_delete(*, instance: Instance, user, delete_backups: bool = False) -> Instance:
    """Stops billing at once and enqueues the destruction of the machine and its disk; its volumes are detached
    and kept. Its backups are kept (and stay billed) unless `delete_backups`; its backup schedule ends."""
    from compute.storage.services.backups import backups_instance_deleting

    def prepare(locked: Instance, now) -> list[str]:
        lifecycle.announce_ended(resource_type=lifecycle.INSTANCE, resource_id=locked.pk, at=now)
        network_services.instance_networking_detach(instance=locked, user=user)
        storage_services.instance_volumes_detach(instance=locked, user=user)  # detached and kept
        backups_instance_deleting(instance=locked, user=user, delete_backups=delete_backups, at=now)
        return []

    return _request_transition(
        instance=instance,
        user=user,
        action=EventAction.DELETE,
        transition="delete",
        verb="delete",
        prepare=prepare,
    )


def instance_console_opened(*, instance: Instance, user) -> None:
    """A member opens the machine's interactive console: the activity log says who, when and from where (what is
    typed is never recorded)."""
    activity_record(
        tenant_id=instance.tenant_id,
        resource_type=ActivityEntry.ResourceType.INSTANCE,
        resource_id=instance.pk,
        resource_name=instance.name,
        action="console_open",
        action_label="Console opened",
        actor=user,
        message="Interactive serial console",
    )


def instance_restore(*, instance: Instance, user, disk_file: str, label: str) -> Instance:
    """Overwrites the boot disk with the pool file `disk_file` (a backup called `label`): the machine is stopped,
    its disk replaced, and started again if it was running."""
    return _request_transition(
        instance=instance,
        user=user,
        action=EventAction.RESTORE,
        transition="restore",
        verb="restore",
        params={"file": disk_file, "was_running": instance.state == InstanceState.RUNNING},
        message=f"from {label}; everything written since is lost",
    )


def instance_rename(*, instance: Instance, user, name: str) -> Instance:
    """Changes the display name only (the guest's hostname is set once, at build)."""
    name = _clean_name(name)
    with transaction.atomic():
        locked = _lock(instance)
        refusal = None if locked.can("rename") else _refusal(locked, "rename", INSTANCE_ACTIONS["rename"].allowed_label)
        if refusal is None:
            old = locked.name
            if old == name:
                return locked
            _check_name_free(tenant=locked.tenant, name=name, exclude=locked)
            locked.name = name
            try:
                with transaction.atomic():
                    locked.save(update_fields=["name", "updated_at"])
            except IntegrityError:
                raise InvalidRequest(
                    f"You already have an instance called {name}; pick another name.", code="name_taken"
                ) from None
            _event(locked, EventAction.RENAME, EventResult.SUCCEEDED, user=user, message=f"from {old} to {name}")
            lifecycle.announce_renamed(resource_type=lifecycle.INSTANCE, resource_id=locked.pk, name=name)
    if refusal is not None:
        _refuse(locked, EventAction.RENAME, user, refusal)
    return locked


def instance_mark_error(*, instance: Instance, user, reason: str) -> Instance:
    """Operators: take an instance out of whatever it is doing (e.g. a stuck task) and flag it as failed."""
    reason = (reason or "").strip() or "Marked as failed by an operator."
    with transaction.atomic():
        locked = _lock(instance)
        if not locked.can("mark_error"):
            refusal = _refusal(locked, "mark", INSTANCE_ACTIONS["mark_error"].allowed_label)
        else:
            refusal = None
            _fail(locked, reason)
            _event(locked, EventAction.MARK_ERROR, EventResult.SUCCEEDED, user=user, message=reason)
    if refusal is not None:
        _refuse(locked, EventAction.MARK_ERROR, user, refusal)
    return locked


def instance_retry(*, instance: Instance, user) -> Instance:
    """Operators and support: builds again an instance whose provisioning failed. It never ran, so nothing of it was
    billed; it is placed again when its host takes no new machines now."""
    _check_accepts_new_resources(Tenant.objects.get(pk=instance.tenant_id), "built")
    with transaction.atomic():
        locked = _lock(instance)
        refusal = None if locked.can("retry") else _refusal(locked, "retry", INSTANCE_ACTIONS["retry"].allowed_label)
        if refusal is None and locked.events.filter(action=EventAction.BUILD, result=EventResult.SUCCEEDED).exists():
            refusal = Conflict(
                f"{locked.name} ran before it failed: only a failed provisioning can be retried.",
                code="not_a_failed_build",
                details={"state": locked.state},
            )
        if refusal is None:
            host = Host.objects.filter(pk=locked.host_id).first()
            if host is None or not host.schedulable:
                locked.host = schedule(flavor=locked.flavor, region=locked.region or host.region)
            now = timezone.now()
            locked.state = InstanceState.PENDING
            locked.error_reason = ""
            _set_task(locked, InstanceTask.BUILD, now=now)
            locked.save(update_fields=["state", "host", "error_reason", "updated_at", *TASK_FIELDS])
            _event(locked, EventAction.RETRY, EventResult.REQUESTED, user=user, message="Provisioning again.", at=now)
    if refusal is not None:
        _refuse(locked, EventAction.RETRY, user, refusal)
    return locked


# --- outcome recorders (called by the worker tasks and the reconciler) -------------------------------------------


def _fail(locked: Instance, reason: str) -> None:
    locked.state = InstanceState.ERROR
    locked.error_reason = reason[:2000]
    locked.resize_flavor = None
    locked.migration_host = None
    _clear_task(locked)
    locked.save(update_fields=["state", "error_reason", "resize_flavor", "migration_host", "updated_at", *TASK_FIELDS])


def instance_build_succeeded(*, instance_id: str, info: DomainInfo) -> Instance | None:
    """The machine is up: it becomes `running` and billable in the same transaction.

    One conditional UPDATE states the outcome and returns the row: it finds nothing unless the instance still waits
    for this build (a duplicate delivery, or work an operator marked as failed, records nothing), and the row lock
    it takes orders it after a concurrent rename, so the event and the billing segment get the current name. On
    PostgreSQL the same statement writes the build event (a data-modifying WITH query). Nothing the machine holds
    changes (building → running), so the usage totals need no save.
    """
    db = sql.current()
    postgresql = db.vendor == "postgresql"
    with transaction.atomic():
        now = timezone.now()
        at = sql.param(Instance, "updated_at", now, db=db)
        with sql.prepared_cursor(db) as cursor:
            cursor.execute(
                _build_succeeded_sql(db.vendor),
                [
                    str(info.state),
                    sql.param(Instance, "private_ip", info.private_ip or None, db=db),
                    at,
                    sql.param(Instance, "id", instance_id, db=db),
                    *([at] if postgresql else []),
                ],
            )
            row = cursor.fetchone()
        if row is None:
            return None  # already recorded (duplicate delivery) or overtaken (marked as error)
        instance = Instance.from_db(DEFAULT_DB_ALIAS, OUTCOME_FIELDS, sql.reader(Instance, OUTCOME_FIELDS)(row))
        if not postgresql:
            message = f"{RUNNING_AT}{instance.private_ip}" if instance.private_ip else RUNNING
            _outcome_event(instance, EventAction.BUILD, EventResult.SUCCEEDED, message=message, at=now)
        lifecycle.announce_billable(resource=instance.billable(), at=now)
        # No traffic baseline to reset, unlike a start: the counters of a machine are first read once it runs
        # (traffic_sample_running), and a build only ever precedes that (a retry is refused once a build succeeded).
        provisioning = (now - instance.created_at).total_seconds()
        transaction.on_commit(lambda: PROVISIONING_SECONDS.observe(provisioning))
    return instance


# The build event's message: "Running, private IP 10.0.0.5" (or "Running" without an address).
RUNNING, RUNNING_AT = "Running", "Running, private IP "
# What the outcome's UPDATE returns: what its event, its billing segment and its metric need (the rest deferred), in
# the model's field order (Model.from_db takes the values of a partial row in that order).
OUTCOME_FIELDS = ("tenant_id", "id", "name", "flavor_id", "state", "power_state", "private_ip", "created_at")


@functools.cache
def _build_succeeded_sql(vendor: str) -> str:
    def column(name: str) -> str:
        return sql.columns(Instance, [name])

    cleared = ", ".join(f"{column(name)} = NULL" for name in ("task_enqueued_at", "task_progress_at", "task_deadline"))
    update = (
        f"UPDATE {sql.table(Instance)} SET {column('state')} = {sql.literal(InstanceState.RUNNING)}, "
        f"{column('power_state')} = %s, {column('private_ip')} = COALESCE(%s, {column('private_ip')}), "
        f"{column('error_reason')} = '', {column('updated_at')} = %s, "
        f"{column('task')} = {sql.literal(InstanceTask.NONE)}, {column('task_params')} = '{{}}', {cleared}, "
        f"{column('task_requeues')} = 0 "
        f"WHERE {column('id')} = %s AND {column('state')} = {sql.literal(InstanceState.BUILDING)} "
        f"AND {column('task')} = {sql.literal(InstanceTask.BUILD)} "
        f"RETURNING {sql.columns(Instance, OUTCOME_FIELDS)}"
    )
    if vendor != "postgresql":
        return update
    names = ["tenant_id", "instance_id", "action", "result", "message", "actor_id", "created_at"]
    address = f"done.{column('private_ip')}"
    return (
        f"WITH done AS ({update}), logged AS ("
        f"INSERT INTO {sql.table(InstanceEvent)} ({sql.columns(InstanceEvent, names)}) "
        f"SELECT done.{column('tenant_id')}, done.{column('id')}, "
        f"{sql.literal(EventAction.BUILD)}, {sql.literal(EventResult.SUCCEEDED)}, "
        f"CASE WHEN {address} IS NULL THEN {sql.literal(RUNNING)} ELSE {sql.literal(RUNNING_AT)} || host({address}) "
        "END, NULL, %s FROM done"
        ") SELECT * FROM done"
    )


def _outcome_event(instance: Instance, action: str, result: str, *, message: str, at) -> None:
    """A worker's outcome in the machine's log (no activity entry: see _event), one INSERT written in SQL."""
    sql.insert(
        InstanceEvent,
        {
            "tenant_id": instance.tenant_id,
            "instance_id": instance.pk,
            "action": action,
            "result": result,
            "message": message,
            "actor_id": None,
            "created_at": at,
        },
    )


def instance_build_failed(*, instance_id: str, reason: str) -> Instance | None:
    with transaction.atomic():
        locked = _lock(instance_id)
        if locked.state not in (InstanceState.PENDING, InstanceState.BUILDING) or locked.task != InstanceTask.BUILD:
            return None
        _fail(locked, reason)
        _event(locked, EventAction.BUILD, EventResult.FAILED, message=reason)
    return locked


def instance_action_succeeded(*, instance_id: str, task: str, info: DomainInfo | None = None) -> Instance | None:
    """Records a finished start/stop/reboot/resize/delete; a no-op if the instance is no longer waiting for it."""
    in_progress, done = TASK_STATES[task]
    with transaction.atomic():
        locked = _lock(instance_id)
        if locked.state != in_progress or locked.task != task:
            return None
        now = timezone.now()
        fields = ["state", "power_state", "updated_at", *TASK_FIELDS]
        message = ""
        if task == InstanceTask.RESIZE and locked.resize_flavor_id:
            old = locked.flavor
            locked.flavor = locked.resize_flavor
            locked.resize_flavor = None
            fields += ["flavor", "resize_flavor"]
            message = f"from {old.name} to {locked.flavor.name}"
        if task == InstanceTask.DELETE:
            locked.deleted_at = now
            locked.private_ip = None
            fields += ["deleted_at", "private_ip"]
            network_services.instance_networking_release(instance=locked)
        if task == InstanceTask.START:
            network_services.traffic_baseline_reset(instance_id=locked.pk)
        locked.state = done
        if task == InstanceTask.RESTORE and info is not None and info.state == PowerState.RUNNING:
            locked.state = InstanceState.RUNNING  # it ran before: it runs again on the restored disk
        locked.power_state = info.state if info is not None else PowerState.NOSTATE
        _clear_task(locked)
        locked.save(update_fields=fields)
        if task == InstanceTask.RESIZE and message:
            # The price changes with the size: the old one ends and the new one starts now.
            lifecycle.announce_repriced(resource=locked.billable(), at=now)
        _event(locked, TASK_ACTIONS[task], EventResult.SUCCEEDED, message=message, at=now)
    return locked


def instance_action_failed(*, instance_id: str, task: str, reason: str) -> Instance | None:
    """A start/stop/reboot/resize/delete that cannot succeed: the instance goes to `error` with the reason."""
    in_progress, _ = TASK_STATES[task]
    with transaction.atomic():
        locked = _lock(instance_id)
        if locked.state != in_progress or locked.task != task:
            return None
        _fail(locked, reason)
        _event(locked, TASK_ACTIONS[task], EventResult.FAILED, message=reason)
    return locked


def instance_task_failed(*, instance_id: str, task: str, reason: str) -> Instance | None:
    """Dispatches a failure to the build or the action recorder."""
    if task == InstanceTask.BUILD:
        return instance_build_failed(instance_id=instance_id, reason=reason)
    return instance_action_failed(instance_id=instance_id, task=task, reason=reason)
