"""Volume requests (one function per transition) and the outcome recorders the worker tasks call.

Requests lock what they change (the machine first, then the volume; the quota row after them), check the guard,
move the volume into a transitional state, write a StorageEvent and enqueue the worker's task when the transaction
commits. Workers report back through the recorders (`volume_task_succeeded`, `volume_task_failed`), which do
nothing when the volume no longer waits for that work: a duplicate delivery records nothing twice.

Billing follows the lifecycle facts: a volume is billable from the moment it is available until its deletion is
requested, and an extend closes one segment and opens the next at its new size.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from compute import lifecycle
from compute.models import Host, Instance, InstanceState, Region
from compute.scheduler import claim_storage_growth, place_storage
from compute.storage.models import (
    MAX_VOLUME_GIB,
    MAX_VOLUMES_PER_INSTANCE,
    MIN_VOLUME_GIB,
    Snapshot,
    SnapshotState,
    StorageEventAction,
    StorageTask,
    Volume,
    VolumeState,
)
from compute.storage.selectors import free_device, machine_hosts
from compute.storage.services.common import (
    TASK_FIELDS,
    busy,
    check_accepts_new_spending,
    check_volume_quota,
    clean_labels,
    clean_name,
    create_requested,
    delete_refusal,
    finish_task,
    item_delete,
    item_update,
    item_vanished,
    lock,
    name_taken,
    pending,
    refuse,
    set_task,
    start_task,
)
from portal.errors import Conflict, InvalidRequest, Unprocessable
from tenants.models import EventResult, Tenant
from tenants.services import user_check_verified

A = StorageEventAction
# The state each task moves a volume into, and the one it leaves it in when it succeeds.
TASK_STATES = {
    StorageTask.CREATE: (VolumeState.CREATING, VolumeState.AVAILABLE),
    StorageTask.ATTACH: (VolumeState.ATTACHING, VolumeState.IN_USE),
    StorageTask.DETACH: (VolumeState.DETACHING, VolumeState.AVAILABLE),
    StorageTask.EXTEND: (VolumeState.EXTENDING, None),  # back to where it was: available or in use
    StorageTask.DELETE: (VolumeState.DELETING, VolumeState.DELETED),
}
TASK_ACTIONS = {
    StorageTask.CREATE: A.VOLUME_CREATE,
    StorageTask.ATTACH: A.VOLUME_ATTACH,
    StorageTask.DETACH: A.VOLUME_DETACH,
    StorageTask.EXTEND: A.VOLUME_EXTEND,
    StorageTask.DELETE: A.VOLUME_DELETE,
}
# Machines a volume can be attached to or detached from: settled ones (hot-plugged when running).
ATTACHABLE_STATES = (InstanceState.RUNNING, InstanceState.STOPPED)


def _clean_size(size_gib, *, field: str = "size_gib") -> int:
    if isinstance(size_gib, bool) or not isinstance(size_gib, int):
        try:
            size_gib = int(str(size_gib).strip())
        except ValueError:
            raise InvalidRequest(
                "The size is a whole number of GiB.", code="invalid_size", details={"field": field}
            ) from None
    if not MIN_VOLUME_GIB <= size_gib <= MAX_VOLUME_GIB:
        raise InvalidRequest(
            f"A volume is {MIN_VOLUME_GIB} to {MAX_VOLUME_GIB:,} GiB.", code="invalid_size", details={"field": field}
        )
    return size_gib


def _start(locked: Volume, task: str, **request) -> None:
    start_task(locked, task, state=TASK_STATES[task][0], **request)


# --- requests ---------------------------------------------------------------------------------------------------


def volume_create(
    *,
    tenant: Tenant,
    user,
    name: str,
    size_gib: int | None = None,
    snapshot: Snapshot | None = None,
    region: Region | None = None,
    labels: dict | None = None,
) -> Volume:
    """Reserves quota (GiB and count) and room in a host's storage pool, and enqueues the volume's creation: empty
    of `size_gib`, or from `snapshot` (at least the snapshot's size; by default exactly it). It starts `creating`."""
    user_check_verified(user=user, verb="create a volume")
    check_accepts_new_spending(tenant.pk)
    name = clean_name(name, what="volume")
    labels = clean_labels(labels)
    if snapshot is not None:
        if not isinstance(snapshot, Snapshot) or snapshot.tenant_id != tenant.pk:
            raise InvalidRequest("That snapshot is not one of yours.", code="invalid_snapshot")
        if size_gib is None:
            size_gib = snapshot.size_gib
    if size_gib is None:
        raise InvalidRequest("Give the volume a size in GiB.", code="invalid_size", details={"field": "size_gib"})
    size_gib = _clean_size(size_gib)
    if snapshot is not None and size_gib < snapshot.size_gib:
        raise InvalidRequest(
            f"A volume made from {snapshot.name} needs at least its {snapshot.size_gib} GiB.",
            code="invalid_size",
            details={"field": "size_gib"},
        )
    if region is None:
        region = snapshot.region if snapshot is not None else Region.objects.default()
        if region is None:
            raise Unprocessable("No region is open yet.", code="no_region")
    elif snapshot is not None and region.pk != snapshot.region_id:
        raise InvalidRequest(
            f"{snapshot.name} is kept in {snapshot.region}; volumes made from it are too.",
            code="invalid_region",
            details={"field": "region"},
        )
    with transaction.atomic():
        if snapshot is not None:
            snapshot = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
            if not snapshot.can_restore():
                raise busy(snapshot, "restore", "an available")
        check_volume_quota(tenant_id=tenant.pk, requested={"volumes": 1, "volume_gb": size_gib})
        if (taken := name_taken(Volume, tenant_id=tenant.pk, name=name, what="volume")) is not None:
            raise taken
        host = place_storage(
            size_gib=size_gib,
            region=region,
            host=snapshot.host if snapshot is not None else None,
            prefer=machine_hosts(tenant_id=tenant.pk, region=region),
        )
        now = timezone.now()
        volume = Volume(
            tenant=tenant,
            name=name,
            size_gib=size_gib,
            region=region,
            host=host,
            source_snapshot=snapshot,
            labels=labels,
            created_by=user,
            created_at=now,
        )
        message = f"{size_gib} GiB" + (f" from snapshot {snapshot.name}" if snapshot is not None else ", empty")
        create_requested(volume, user=user, action=A.VOLUME_CREATE, message=message, now=now)
    return volume


def volume_attach(*, volume: Volume, instance: Instance, user) -> Volume:
    """Attaches an available volume to a running or stopped machine of the same tenant, on the host that keeps the
    volume, as its next free disk (vdb…); a machine holds at most MAX_VOLUMES_PER_INSTANCE volumes."""
    if not isinstance(instance, Instance) or instance.tenant_id != volume.tenant_id:
        raise InvalidRequest(
            "That machine is not one of yours.", code="invalid_instance", details={"field": "instance"}
        )
    refusal = None
    with transaction.atomic():
        machine = Instance.objects.select_for_update().get(pk=instance.pk)  # the machine first, then its volumes
        locked = lock(Volume, volume)
        device = free_device(instance=machine)
        if not locked.can_attach():
            refusal = busy(locked, "attach", "an available")
        elif machine.state not in ATTACHABLE_STATES:
            refusal = Conflict(
                f"{machine.name} is {machine.get_state_display().lower()}; volumes attach to running or stopped "
                "machines.",
                code="instance_busy",
                details={"state": machine.state},
            )
        elif machine.host_id is None or Host.objects.get(pk=machine.host_id).region_id != locked.region_id:
            refusal = Unprocessable(
                f"{locked.name} is in another region than {machine.name}; volumes attach to machines of their region.",
                code="volume_elsewhere",
            )
        elif device is None:
            refusal = Unprocessable(
                f"{machine.name} already has {MAX_VOLUMES_PER_INSTANCE} volumes, the most a machine can hold; detach "
                "one first.",
                code="too_many_volumes",
                details={"limit": MAX_VOLUMES_PER_INSTANCE},
            )
        else:
            params = {}
            if machine.host_id != locked.host_id:
                # Kept on another host: its file moves to the machine's host first (room claimed there now).
                claim_storage_growth(host=machine.host, growth_gib=locked.size_gib, what=machine.name)
                params = {"move_from": str(locked.host_id)}
                locked.host_id = machine.host_id
            locked.instance, locked.device = machine, device
            _start(
                locked,
                StorageTask.ATTACH,
                user=user,
                action=A.VOLUME_ATTACH,
                message=f"to {machine.name} as {device}",
                params=params,
                fields=["instance", "device", "host"],
            )
    if refusal is not None:
        refuse(locked, A.VOLUME_ATTACH, user, refusal)
    return locked


def volume_detach(*, volume: Volume, user) -> Volume:
    """Detaches an in-use volume from its machine (hot-unplugged when it runs); its data stays on the volume."""
    refusal = None
    with transaction.atomic():
        if volume.instance_id is not None:
            Instance.objects.select_for_update().filter(pk=volume.instance_id).first()
        locked = lock(Volume, volume)
        if not locked.can_detach():
            refusal = busy(locked, "detach", "an in-use")
        else:
            machine = Instance.objects.filter(pk=locked.instance_id).first()
            if machine is not None and machine.is_transitional and machine.state != InstanceState.DELETING:
                refusal = Conflict(
                    f"{machine.name} is {machine.get_state_display().lower()}; wait until that has finished, then "
                    "detach the volume.",
                    code="instance_busy",
                    details={"state": machine.state},
                )
            else:
                _start(
                    locked,
                    StorageTask.DETACH,
                    user=user,
                    action=A.VOLUME_DETACH,
                    message=f"from {machine.name}" if machine is not None else "",
                )
    if refusal is not None:
        refuse(locked, A.VOLUME_DETACH, user, refusal)
    return locked


def volume_extend(*, volume: Volume, user, size_gib) -> Volume:
    """Grows the volume to `size_gib` (never shrinks), online while attached to a running machine. The new size
    counts against the quota and the host's pool from the request; billing moves to it when it is done."""
    check_accepts_new_spending(volume.tenant_id)
    size_gib = _clean_size(size_gib)
    refusal = None
    with transaction.atomic():
        locked = lock(Volume, volume)
        if not locked.can_extend():
            refusal = busy(locked, "extend", "an available or in-use")
        elif size_gib <= locked.size_gib:
            refusal = InvalidRequest(
                f"Volumes only grow: {locked.name} has {locked.size_gib} GiB; give a larger size."
                if size_gib < locked.size_gib
                else f"{locked.name} already has {size_gib} GiB.",
                code="volume_shrink" if size_gib < locked.size_gib else "same_size",
                details={"field": "size_gib"},
            )
        elif locked.snapshots.filter(state=SnapshotState.CREATING).exists():
            refusal = Conflict(
                f"A snapshot of {locked.name} is being taken; extend it when that has finished.", code="volume_busy"
            )
        if refusal is None:
            growth = size_gib - locked.size_gib
            check_volume_quota(tenant_id=locked.tenant_id, requested={"volume_gb": growth})
            claim_storage_growth(host=locked.host, growth_gib=growth, what=locked.name)
            params = {"from_gib": locked.size_gib, "state": locked.state}
            locked.size_gib = size_gib
            _start(
                locked,
                StorageTask.EXTEND,
                user=user,
                action=A.VOLUME_EXTEND,
                message=f"from {params['from_gib']} GiB to {size_gib} GiB",
                params=params,
                fields=["size_gib"],
            )
    if refusal is not None:
        refuse(locked, A.VOLUME_EXTEND, user, refusal)
    return locked


def volume_delete(*, volume: Volume, user) -> Volume:
    """Stops billing at once and enqueues the deletion of the volume's data. Refused while it is attached (the
    message names the machine); its snapshots are kept."""
    return item_delete(
        volume,
        user=user,
        refusal_of=_delete_refusal,
        state=TASK_STATES[StorageTask.DELETE][0],
        action=A.VOLUME_DELETE,
        resource_type=lifecycle.VOLUME,
    )


def _delete_refusal(locked: Volume) -> Conflict | None:
    if locked.instance_id is not None and locked.state != VolumeState.ERROR:
        machine = Instance.objects.filter(pk=locked.instance_id).values_list("name", flat=True).first()
        return Conflict(
            f"{locked.name} is attached to {machine}; detach it first.",
            code="volume_attached",
            details={"instance": str(locked.instance_id), "instance_name": machine},
        )
    return delete_refusal(
        locked,
        making=locked.snapshots.filter(state=SnapshotState.CREATING),
        happening=f"A snapshot of {locked.name} is being taken",
    )


def volume_update(*, volume: Volume, user, name: str | None = None, labels: dict | None = None) -> Volume:
    """Renames the volume and/or replaces its labels."""
    return item_update(
        item=volume, user=user, name=name, labels=labels, action=A.VOLUME_RENAME, resource_type=lifecycle.VOLUME
    )


def instance_volumes_detach(*, instance: Instance, user=None) -> list[Volume]:
    """A machine is being deleted: its volumes are detached and kept (call with the machine locked, inside the
    transaction of its delete request)."""
    detached = []
    for volume in Volume.objects.select_for_update().filter(instance=instance).order_by("pk"):
        if volume.state == VolumeState.IN_USE or volume.state == VolumeState.ATTACHING:
            _start(
                volume,
                StorageTask.DETACH,
                user=user,
                action=A.VOLUME_DETACH,
                message=f"from {instance.name}, which is being deleted; the volume is kept",
                params={"machine_deleted": True},
            )
            detached.append(volume)
    return detached


def instance_has_volumes(*, instance: Instance) -> bool:
    return Volume.objects.filter(instance=instance).exclude(state=VolumeState.DELETED).exists()


# --- outcomes (the worker's side) -------------------------------------------------------------------------------


def volume_task_succeeded(*, volume_id: str, task: str) -> Volume | None:
    """Records the outcome of finished work; ignored if the volume has moved on."""
    with transaction.atomic():
        volume = pending(Volume, volume_id, task, TASK_STATES)
        if volume is None:
            return None
        now = timezone.now()
        fields = []
        message = ""
        after = TASK_STATES[task][1]
        if task == StorageTask.CREATE:
            lifecycle.announce_billable(resource=volume.billable(), at=now)
            message = f"{volume.size_gib} GiB"
        elif task == StorageTask.ATTACH:
            message = f"as {volume.device}"
        elif task == StorageTask.DETACH:
            volume.instance, volume.device = None, ""
            fields += ["instance", "device"]
        elif task == StorageTask.EXTEND:
            after = volume.task_params.get("state") or VolumeState.AVAILABLE
            lifecycle.announce_repriced(resource=volume.billable(), at=now)
            message = f"now {volume.size_gib} GiB"
        elif task == StorageTask.DELETE:
            volume.deleted_at = now
            fields.append("deleted_at")
        volume.state = after
        finish_task(volume, action=TASK_ACTIONS[task], fields=fields, message=message, at=now)
        _follow_machine(volume)
    return volume


def _follow_machine(volume: Volume) -> None:
    """A volume that finished attaching or extending while its machine was being deleted is detached in turn."""
    if volume.state != VolumeState.IN_USE or volume.instance_id is None:
        return
    machine_state = Instance.objects.filter(pk=volume.instance_id).values_list("state", flat=True).first()
    if machine_state in (InstanceState.DELETING, InstanceState.DELETED, None):
        volume.state = TASK_STATES[StorageTask.DETACH][0]
        set_task(volume, StorageTask.DETACH, params={"machine_deleted": True})
        volume.save(update_fields=["state", "updated_at", *TASK_FIELDS])


def volume_moved(*, volume_id: str) -> bool:
    """The worker moved the volume's file to the machine's host: a failure from here on leaves it there."""
    with transaction.atomic():
        volume = pending(Volume, volume_id, StorageTask.ATTACH, TASK_STATES)
        if volume is None or "move_from" not in volume.task_params:
            return False
        volume.task_params = {key: value for key, value in volume.task_params.items() if key != "move_from"}
        volume.save(update_fields=["task_params", "updated_at"])
    return True


def volume_task_failed(*, volume_id: str, task: str, reason: str) -> Volume | None:
    """Records a failure: a create or delete leaves the volume in `error`; a failed attach, detach or extend puts it
    back as it was (unattached, attached, at its old size), with the reason in its log."""
    with transaction.atomic():
        volume = pending(Volume, volume_id, task, TASK_STATES)
        if volume is None:
            return None
        fields = ["error_reason"]
        if task in (StorageTask.CREATE, StorageTask.DELETE):
            volume.state = VolumeState.ERROR
        elif task == StorageTask.ATTACH:
            volume.state, volume.instance, volume.device = VolumeState.AVAILABLE, None, ""
            fields += ["instance", "device"]
            if volume.task_params.get("move_from"):  # its file never left the old host
                volume.host_id = volume.task_params["move_from"]
                fields.append("host")
        elif task == StorageTask.DETACH:
            volume.state = VolumeState.IN_USE
        elif task == StorageTask.EXTEND:
            volume.state = volume.task_params.get("state") or VolumeState.AVAILABLE
            volume.size_gib = volume.task_params.get("from_gib") or volume.size_gib
            fields.append("size_gib")
        volume.error_reason = reason
        finish_task(volume, action=TASK_ACTIONS[task], fields=fields, message=reason, result=EventResult.FAILED)
        _follow_machine(volume)
    return volume


def volume_vanished(*, volume_id: str, expected_state: str, host_name: str) -> bool:
    """The reconciler found the volume's file gone from its host's pool: it goes to `error` (billing stops), like an
    instance whose machine vanished. Only if it is still in `expected_state` (a settled state)."""
    return item_vanished(
        Volume,
        pk=volume_id,
        state=expected_state,
        host_name=host_name,
        resource_type=lifecycle.VOLUME,
        action=A.VOLUME_ERROR,
    )
