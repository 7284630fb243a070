"""Volumes and snapshots take room in their host's pool: the host's running disk total follows them, so launches and
storage are placed against the same figure the hourly repair recounts."""

import pytest

from compute.models import Host
from compute.services.usage import host_usage_recount
from compute.storage import services
from portal.errors import Unprocessable
from tests.factories.compute import HostFactory


def _held(host) -> int:
    return Host.objects.get(pk=host.pk).held_disk_gib


def _matches_recount(*hosts) -> None:
    recount = host_usage_recount(host_ids=[host.pk for host in hosts])
    for host in hosts:
        assert _held(host) == recount[host.pk][2]


def test_the_hosts_disk_total_follows_create_extend_move_snapshot_and_delete(
    make_volume, launch, member, committed, host
):
    before = _held(host)
    volume = make_volume(size_gib=100)
    assert _held(host) == before + 100
    _matches_recount(host)

    with committed():
        services.volume_extend(volume=volume, user=member, size_gib=150)
    assert _held(host) == before + 150
    with committed():
        snapshot = services.snapshot_create(volume=volume, user=member, name="snap-1")
    assert _held(host) == before + 300
    _matches_recount(host)

    # Attached to a machine on another host: the file moves, and so does the room it takes.
    host.enabled = False
    host.save()
    other = HostFactory(name="hv-2", boot_seconds=0, stop_seconds=0)
    with committed():
        machine = launch(name="far")
    machine.refresh_from_db()
    other_before = _held(other)
    with committed():
        services.volume_attach(volume=volume, instance=machine, user=member)
    assert _held(other) == other_before + 150
    assert _held(host) == before + 150  # the snapshot stays where it was taken
    _matches_recount(host, other)

    with committed():
        services.snapshot_delete(snapshot=snapshot, user=member)
        services.volume_detach(volume=volume, user=member)
    with committed():
        services.volume_delete(volume=volume, user=member)
    assert (_held(host), _held(other)) == (before, other_before)
    _matches_recount(host, other)


def test_a_full_pool_refuses_the_next_volume(make_volume, tenant, member, host):
    tenant.quota.volume_gb = 100_000
    tenant.quota.save()
    room = host.disk_gib_allocatable - _held(host)
    make_volume(name="fills-it", size_gib=room)
    with pytest.raises(Unprocessable, match="has room for 1 GiB of storage") as refused:
        services.volume_create(tenant=tenant, user=member, name="one-more", size_gib=1)
    assert refused.value.code == "no_capacity"
