"""The running usage totals on quota and host rows always equal a recount of the instance rows."""

from decimal import Decimal

import pytest
from django.core.management import call_command

from compute.models import Host, Instance
from compute.services import (
    instance_delete,
    instance_launch,
    instance_mark_error,
    instance_migrate,
    instance_resize,
    instance_retry,
    instance_stop,
    operations,
)
from compute.services.usage import host_usage_recount, tenant_usage_recount, usage_totals_repair
from tenants.models import Quota
from tests.concurrency import race
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory
from tests.factories.tenants import MembershipFactory, TenantFactory


def _totals_match() -> None:
    quotas = {q.tenant_id: (q.held_instances, q.held_vcpus, q.held_ram_mib) for q in Quota.objects.all()}
    assert quotas == tenant_usage_recount(tenant_ids=list(quotas))
    hosts = {
        h.pk: (h.held_vcpus, h.held_ram_mib, h.held_disk_gib, h.held_instances)
        for h in Host.objects.all().only("pk", "held_vcpus", "held_ram_mib", "held_disk_gib", "held_instances")
    }
    assert hosts == host_usage_recount(host_ids=list(hosts))


def _work(instance, task: str) -> None:
    operations.instance_task_perform(instance_id=str(instance.pk), task=task)


@pytest.mark.django_db
def test_the_totals_follow_every_change_of_what_a_machine_holds(tenant, member, image):
    small = FlavorFactory(name="t-small", vcpus=1, ram_mib=1024, disk_gib=10)
    large = FlavorFactory(name="t-large", vcpus=4, ram_mib=8192, disk_gib=40)
    first, second = HostFactory(name="hv-a", boot_seconds=0), HostFactory(name="hv-b", boot_seconds=0)
    InstanceFactory(tenant=tenant, host=first, flavor=large, name="made-by-hand")
    _totals_match()

    launched = [
        instance_launch(tenant=tenant, user=member, name=f"vm-{n}", flavor=small, image=image, keys=[])
        for n in range(3)
    ]
    _totals_match()
    for instance in launched:
        _work(instance, "build")
    _totals_match()

    # A resize holds the larger size until it finishes; a failed one gives the growth back.
    resized, failed, moved = launched
    for instance in (resized, failed):
        instance_stop(instance=instance, user=member)
        _work(instance, "stop")
        instance_resize(instance=Instance.objects.get(pk=instance.pk), user=member, flavor=large)
    _totals_match()
    _work(resized, "resize")
    instance_mark_error(instance=Instance.objects.get(pk=failed.pk), user=member, reason="stuck")
    _totals_match()

    # A move holds room on both hosts until it finishes.
    instance_migrate(instance=Instance.objects.get(pk=moved.pk), user=member)
    _totals_match()
    _work(moved, "migrate")
    _totals_match()

    # A deletion frees the room once it is done.
    instance_delete(instance=Instance.objects.get(pk=resized.pk), user=member)
    _totals_match()
    _work(resized, "delete")
    _totals_match()

    # A failed build retried elsewhere; an operator's edit in the admin; a row removed.
    broken = instance_launch(tenant=tenant, user=member, name="broken", flavor=small, image=image, keys=[])
    instance_mark_error(instance=broken, user=member, reason="build failed")
    Host.objects.filter(pk=broken.host_id).update(enabled=False)
    instance_retry(instance=Instance.objects.get(pk=broken.pk), user=member)
    _totals_match()
    edited = Instance.objects.get(name="made-by-hand")
    edited.host = second
    edited.save()
    _totals_match()
    edited.delete()
    _totals_match()


@pytest.mark.django_db
def test_saving_a_quota_or_host_read_earlier_keeps_the_totals(tenant, member, flavor, image, host):
    quota = Quota.objects.get(tenant=tenant)
    stale_host = Host.objects.get(pk=host.pk)
    instance_launch(tenant=tenant, user=member, name="vm", flavor=flavor, image=image, keys=[])
    quota.instances = 50
    quota.save()
    stale_host.draining = True
    stale_host.save()
    _totals_match()
    assert Quota.objects.get(tenant=tenant).instances == 50


@pytest.mark.django_db
def test_the_repair_corrects_totals_that_drifted_and_says_which(tenant, member, flavor, image, host, capsys):
    instance_launch(tenant=tenant, user=member, name="vm", flavor=flavor, image=image, keys=[])
    assert usage_totals_repair() == []
    Quota.objects.filter(tenant=tenant).update(held_instances=7)
    Host.objects.filter(pk=host.pk).update(held_vcpus=0)

    call_command("usage_repair")

    output = capsys.readouterr().out
    assert f"quota {tenant.pk}: (7," in output and f"host {host.pk}: (0," in output
    _totals_match()
    call_command("usage_repair")
    assert "Every total matches" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_quota_made_for_a_tenant_that_has_machines_counts_them(tenant, flavor, host):
    InstanceFactory(tenant=tenant, flavor=flavor, host=host)
    Quota.objects.filter(tenant=tenant).delete()
    Quota.objects.create(tenant=tenant, **Quota.defaults())
    _totals_match()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_totals_hold_under_concurrent_launches_and_deletes():
    flavor, image = FlavorFactory(vcpus=2, ram_mib=2048, disk_gib=10), ImageFactory()
    HostFactory(name="c-1", vcpus=24, ram_mib=65536, disk_gib=1000, cpu_allocation_ratio=Decimal(1), boot_seconds=0)
    HostFactory(name="c-2", vcpus=24, ram_mib=65536, disk_gib=1000, cpu_allocation_ratio=Decimal(1), boot_seconds=0)
    tenants = [TenantFactory() for _ in range(4)]
    for tenant in tenants:
        tenant.quota.instances = 5
        tenant.quota.save()
    users = [MembershipFactory(tenant=tenant).user for tenant in tenants]
    doomed = [
        instance_launch(tenant=tenants[n % 4], user=users[n % 4], name=f"old-{n}", flavor=flavor, image=image, keys=[])
        for n in range(8)
    ]
    for instance in doomed:
        _work(instance, "build")

    def step(n: int) -> None:
        if n < 8:
            instance = Instance.objects.get(pk=doomed[n].pk)
            instance_delete(instance=instance, user=users[n % 4])
            _work(instance, "delete")
        else:
            instance_launch(
                tenant=tenants[n % 4], user=users[n % 4], name=f"new-{n}", flavor=flavor, image=image, keys=[]
            )

    results = race(24, step)

    assert set(results) <= {"ok", "quota_exceeded", "no_capacity"}
    assert Instance.objects.live().count() <= 24  # 2 hosts x 12 machines of 2 vCPUs
    _totals_match()
