"""The worker side of an instance's lifecycle: claim the work, drive the hypervisor, report the outcome.

Called by the thin Celery tasks in compute/tasks.py; it lives with the services because claiming work is a write.
Every step is safe to repeat: the claim is a conditional UPDATE (a delivery for work that is already done finds
nothing to claim), every driver call is idempotent on the instance uuid (a create after a crash adopts the domain
the first attempt made), and the outcome recorders ignore outcomes for work the instance is no longer waiting for.
"""

from __future__ import annotations

import functools
import time
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from compute import catalog, services
from compute.drivers import driver_for
from compute.drivers.base import (
    DomainInfo,
    DomainNotFound,
    DomainSpec,
    PermanentDriverError,
    PowerState,
    TransientDriverError,
)
from compute.models import TASK_STATES, Host, Instance, InstanceState, InstanceTask
from compute.network.cloudinit import build_seed
from compute.network.selectors import build_reads_attach, build_reads_sql, firewall_specs, instance_ports, nic_specs
from compute.network.services.hosts import instance_networks_prepare
from compute.network.services.traffic import traffic_sample_quietly
from portal import sql

# How long one task run waits for a domain to settle (boot, shut down) before handing over to a retry.
SETTLE_WAIT = timedelta(seconds=120)
POLL_INTERVAL = 0.5
PROGRESS_EVERY = timedelta(seconds=5)

# The power state each task waits for (None: the domain must be gone).
TARGET_POWER = {
    InstanceTask.BUILD: PowerState.RUNNING,
    InstanceTask.START: PowerState.RUNNING,
    InstanceTask.STOP: PowerState.SHUTOFF,
    InstanceTask.REBOOT: PowerState.RUNNING,
    InstanceTask.RESIZE: PowerState.SHUTOFF,
    InstanceTask.RESTORE: PowerState.RUNNING,
    InstanceTask.DELETE: None,
}


def instance_task_claim(*, instance_id: str, task: str) -> Instance | None:
    """Claims the instance's pending work with a conditional UPDATE; None means there is nothing to do.

    A build moves pending → building; a build found already `building` (a redelivery after a worker died) is
    claimed again, which is safe because the driver adopts the domain the first attempt may have made. The UPDATE
    returns the row it claimed (no second read), for a build with its interfaces and firewall rules, and on
    PostgreSQL with its host (SQLite reads the host after it); a move reads its new host too.
    """
    db = sql.current()
    now = sql.param(Instance, "updated_at", timezone.now(), db=db)
    with sql.prepared_cursor(db) as cursor:
        cursor.execute(_claim_sql(task, db.vendor), [now, now, sql.param(Instance, "id", instance_id, db=db)])
        row = cursor.fetchone()
    if row is None:
        return None
    columns = len(sql.attnames(Instance))
    instance = sql.instance_from_row(Instance, row[:columns])
    if task == InstanceTask.BUILD:
        build_reads_attach(instance, ports=row[columns], rules=row[columns + 1])
        columns += 2
    if connection.vendor == "postgresql":  # the claim returned the host's row too
        instance.host = sql.instance_from_row(Host, row[columns:]) if instance.host_id is not None else None
    else:
        instance.host = _host(instance.host_id)
    if task == InstanceTask.MIGRATE:
        instance.migration_host = _host(instance.migration_host_id)
    return catalog.attach(instance)


@functools.cache
def _claim_sql(task: str, vendor: str) -> str:
    """The claim's UPDATE, returning the row; a build's also returns its interfaces and firewall rules. On
    PostgreSQL the UPDATE is a data-modifying WITH query joined to the instance's host, so the host comes with it."""
    build = task == InstanceTask.BUILD
    in_progress = TASK_STATES[task][0]
    states = [InstanceState.PENDING, InstanceState.BUILDING] if build else [in_progress]
    returning = sql.columns(Instance, sql.attnames(Instance))
    if build:
        reads = build_reads_sql(f"{sql.table(Instance)}.{sql.columns(Instance, ['id'])}")
        returning += ", " + ", ".join(f"{read} AS {name}" for read, name in zip(reads, ("ports", "rules"), strict=True))
    update = (
        f"UPDATE {sql.table(Instance)} SET {sql.columns(Instance, ['state'])} = {sql.literal(in_progress)}, "
        f"{sql.columns(Instance, ['task_progress_at'])} = %s, {sql.columns(Instance, ['updated_at'])} = %s "
        f"WHERE {sql.columns(Instance, ['id'])} = %s AND {sql.columns(Instance, ['task'])} = {sql.literal(task)} "
        f"AND {sql.columns(Instance, ['state'])} IN ({', '.join(sql.literal(state) for state in states)}) "
        f"RETURNING {returning}"
    )
    if vendor != "postgresql":
        return update
    return (
        f"WITH claimed AS ({update}) SELECT claimed.*, {sql.columns(Host, sql.attnames(Host), alias='h')} "
        f"FROM claimed LEFT JOIN {sql.table(Host)} h ON h.{sql.columns(Host, ['id'])} = claimed."
        f"{sql.columns(Instance, ['host_id'])}"
    )


@functools.cache
def _host_sql(vendor: str) -> str:
    columns = sql.columns(Host, sql.attnames(Host))
    return f"SELECT {columns} FROM {sql.table(Host)} WHERE {sql.columns(Host, ['id'])} = %s"


def _host(pk) -> Host | None:
    """The host row by a raw SELECT (the ORM's get() cost more CPU than the rest of the claim)."""
    if pk is None:
        return None
    with sql.prepared_cursor(connection) as cursor:
        cursor.execute(_host_sql(connection.vendor), [sql.param(Host, "id", pk)])
        row = cursor.fetchone()
    return sql.instance_from_row(Host, row) if row is not None else None


def instance_task_progress(*, instance_id: str, task: str) -> None:
    """Tells the reconciler the work is alive (it only re-enqueues work that shows no progress)."""
    now = timezone.now()
    Instance.objects.filter(pk=instance_id, task=task).update(task_progress_at=now)


def domain_spec(instance: Instance) -> DomainSpec:
    """Everything the host needs to create the machine: size, image, interfaces, cloud-init seed and firewall."""
    ssh_keys = [key["public_key"] for key in instance.ssh_keys if key.get("public_key")]
    nics = nic_specs(instance_ports(instance))
    disk_source = instance.disk_source.get("file", "") if instance.disk_source else ""
    return DomainSpec(
        uuid=str(instance.pk),
        name=instance.name,
        vcpus=instance.flavor.vcpus,
        ram_mib=instance.flavor.ram_mib,
        disk_gib=instance.flavor.disk_gib,
        image=instance.image.source,
        ssh_keys=tuple(ssh_keys),
        metadata={"tenant": str(instance.tenant_id), "hostname": instance.name},
        nics=nics,
        seed=build_seed(
            instance_id=str(instance.pk),
            hostname=instance.name,
            ssh_keys=ssh_keys,
            text=instance.user_data,
            nics=list(nics),
        ),
        firewall=firewall_specs(instance=instance),
        disk_source=disk_source,
    )


def _wait_until(driver, *, instance_id: str, task: str, info: DomainInfo, target: str) -> DomainInfo:
    """Polls the domain until it reaches `target`; a boot slower than SETTLE_WAIT becomes a transient error."""
    started = last_progress = timezone.now()
    while info.state != target:
        if info.state == PowerState.CRASHED:
            raise PermanentDriverError(f"The machine crashed while waiting to become {target}.")
        now = timezone.now()
        if now - started > SETTLE_WAIT:
            raise TransientDriverError(f"Still {info.state} after {int(SETTLE_WAIT.total_seconds())} s.")
        if now - last_progress >= PROGRESS_EVERY:
            instance_task_progress(instance_id=instance_id, task=task)
            last_progress = now
        time.sleep(POLL_INTERVAL)
        info = driver.state(info.uuid)
    return info


def _migrate(instance: Instance) -> DomainInfo:
    """Cold migration: shut down on the old host, move the disk, start on the new one if it was running. Each step
    is safe to repeat: a domain that an earlier attempt moved already is no longer on the old host to stop, and
    migrate_to leaves a domain that is on the new host where it is."""
    source, target = driver_for(instance.host), driver_for(instance.migration_host)
    uuid, task = str(instance.pk), InstanceTask.MIGRATE
    # Its networks (with its lease) must be on the new host before the domain arrives there.
    instance_networks_prepare(instance=instance, driver=target)
    try:
        traffic_sample_quietly(instance=instance)  # the counters stay behind with the old NIC
        info = source.stop(uuid)  # graceful: the guest shuts down cleanly (the driver forces it after its timeout)
        _wait_until(source, instance_id=uuid, task=task, info=info, target=PowerState.SHUTOFF)
    except DomainNotFound:
        pass
    info = source.migrate_to(uuid, target)
    instance_task_progress(instance_id=uuid, task=task)
    if instance.task_params.get("was_running"):
        info = _wait_until(target, instance_id=uuid, task=task, info=target.start(uuid), target=PowerState.RUNNING)
    return info


def _restore(instance: Instance, driver) -> DomainInfo:
    """Overwrites the boot disk with a backup: shut down (gracefully), replace the disk, start again if it ran. Each
    step is safe to repeat: a domain already off stays off, the disk is replaced again from the same file."""
    uuid, task = str(instance.pk), InstanceTask.RESTORE
    traffic_sample_quietly(instance=instance)
    info = _wait_until(driver, instance_id=uuid, task=task, info=driver.stop(uuid), target=PowerState.SHUTOFF)
    driver.disk_restore(uuid, source=instance.task_params["file"])
    instance_task_progress(instance_id=uuid, task=task)
    if instance.task_params.get("was_running"):
        info = _wait_until(driver, instance_id=uuid, task=task, info=driver.start(uuid), target=PowerState.RUNNING)
    return info


def _drive(instance: Instance, task: str) -> DomainInfo | None:
    driver = driver_for(instance.host)
    uuid = str(instance.pk)
    if task == InstanceTask.MIGRATE:
        return _migrate(instance)
    if task == InstanceTask.RESTORE:
        return _restore(instance, driver)
    if task == InstanceTask.BUILD:
        instance_networks_prepare(instance=instance, driver=driver)
        info = driver.create(domain_spec(instance))
    elif task == InstanceTask.START:
        info = driver.start(uuid)
    elif task == InstanceTask.STOP:
        traffic_sample_quietly(instance=instance)  # the counters go with the running NIC
        info = driver.stop(uuid, force=bool(instance.task_params.get("force")))
    elif task == InstanceTask.REBOOT:
        info = driver.reboot(uuid)
    elif task == InstanceTask.RESIZE:
        flavor = instance.resize_flavor or instance.flavor
        info = driver.resize(uuid, vcpus=flavor.vcpus, ram_mib=flavor.ram_mib, disk_gib=flavor.disk_gib)
    elif task == InstanceTask.DELETE:
        traffic_sample_quietly(instance=instance)
        driver.destroy(uuid)
        return None
    else:  # pragma: no cover - TASK_STATES and this function list the same tasks
        raise ValueError(f"Unknown task {task!r}")
    return _wait_until(driver, instance_id=uuid, task=task, info=info, target=TARGET_POWER[task])


def instance_task_perform(*, instance_id: str, task: str) -> None:
    """Runs one piece of instance work end to end. TransientDriverError propagates (the task retries it)."""
    with catalog.pinned():  # one check of the catalog's version for the claim and the outcome's billing segment
        _perform(instance_id=instance_id, task=task)


def _perform(*, instance_id: str, task: str) -> None:
    instance = instance_task_claim(instance_id=instance_id, task=task)
    if instance is None:
        return  # done already, overtaken by another request, or never ours: a duplicate delivery
    if task == InstanceTask.MIGRATE and instance.migration_host is None:
        services.instance_task_failed(instance_id=instance_id, task=task, reason="The move names no new host.")
        return
    if instance.host is None:
        if task == InstanceTask.DELETE:
            services.instance_action_succeeded(instance_id=instance_id, task=task)
        else:
            services.instance_task_failed(instance_id=instance_id, task=task, reason="The instance has no host.")
        return
    try:
        info = _drive(instance, task)
    except DomainNotFound as error:
        reason = f"The machine is gone from its host ({error})."
        services.instance_task_failed(instance_id=instance_id, task=task, reason=reason)
        return
    except PermanentDriverError as error:
        services.instance_task_failed(instance_id=instance_id, task=task, reason=str(error))
        return
    if task == InstanceTask.BUILD:
        services.instance_build_succeeded(instance_id=instance_id, info=info)
    elif task == InstanceTask.MIGRATE:
        services.instance_migrate_succeeded(instance_id=instance_id, info=info)
    else:
        services.instance_action_succeeded(instance_id=instance_id, task=task, info=info)
