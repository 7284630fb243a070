"""The operators' admin for compute: pages render with capacity, and actions go through the services."""

import pytest
from django.urls import reverse

from compute.models import Instance, OrphanDomain, Region, SimulatedDomain
from tests.conftest import login_client
from tests.factories.compute import (
    FlavorFactory,
    HostFactory,
    ImageFactory,
    InstanceEventFactory,
    InstanceFactory,
    OrphanDomainFactory,
    RegionFactory,
    SimulatedDomainFactory,
    SSHKeyFactory,
)
from tests.factories.tenants import UserFactory


@pytest.fixture
def operator_client(db):
    return login_client(UserFactory(email="operator@example.com", is_staff=True, is_superuser=True))


@pytest.mark.parametrize(
    "model", ["host", "flavor", "image", "sshkey", "instance", "instanceevent", "orphandomain", "simulateddomain"]
)
def test_changelists_and_change_pages_render(operator_client, tenant, model, django_assert_max_num_queries):
    host = HostFactory(name="hv-a")
    instances = [InstanceFactory(tenant=tenant, host=host) for _ in range(3)]
    objects = {
        "host": host,
        "flavor": FlavorFactory(),
        "image": ImageFactory(),
        "sshkey": SSHKeyFactory(tenant=tenant),
        "instance": instances[0],
        "instanceevent": InstanceEventFactory(instance=instances[0], tenant=tenant),
        "orphandomain": OrphanDomainFactory(host=host),
        "simulateddomain": SimulatedDomainFactory(host=host),
    }
    with django_assert_max_num_queries(20):
        response = operator_client.get(reverse(f"admin:compute_{model}_changelist"))
    assert response.status_code == 200
    response = operator_client.get(reverse(f"admin:compute_{model}_change", args=[objects[model].pk]))
    assert response.status_code == 200


def test_host_list_shows_used_and_free_capacity(operator_client, tenant):
    host = HostFactory(name="hv-a", vcpus=8, ram_mib=16384, disk_gib=100, cpu_allocation_ratio=2)
    flavor = FlavorFactory(vcpus=2, ram_mib=4096, disk_gib=20)
    InstanceFactory(tenant=tenant, host=host, flavor=flavor)
    InstanceFactory(tenant=tenant, host=host, flavor=flavor, state="deleted")

    content = operator_client.get(reverse("admin:compute_host_changelist")).content.decode()

    assert "2 / 16 <span" in content and "· 14 free" in content
    assert "4096 / 16384 MiB" in content and "· 12288 free" in content
    detail = operator_client.get(reverse("admin:compute_host_change", args=[host.pk])).content.decode()
    assert "2 / 16 vCPUs" in detail and "1 live machines" in detail


def test_instance_list_filters_by_state_host_tenant_flavor(operator_client, tenant):
    running = InstanceFactory(tenant=tenant, name="keep-me")
    InstanceFactory(tenant=tenant, name="other", state="stopped")
    url = reverse("admin:compute_instance_changelist")
    query = f"?state__exact=running&host__id__exact={running.host_id}&tenant__id__exact={tenant.pk}"
    query += f"&flavor__id__exact={running.flavor_id}"
    content = operator_client.get(url + query).content.decode()
    assert "keep-me" in content and ">other<" not in content


def _action(client, model, action, objects, **extra):
    return client.post(
        reverse(f"admin:compute_{model}_changelist"),
        {"action": action, "_selected_action": [str(obj.pk) for obj in objects], **extra},
        follow=True,
    )


def test_force_stop_action(operator_client, running, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _action(operator_client, "instance", "force_stop", [running])
    assert response.status_code == 200
    running.refresh_from_db()
    assert running.state == "stopped"
    assert running.events.get(action="force_stop").actor.email == "operator@example.com"


def test_force_stop_of_a_stopped_instance_is_reported_not_crashed(operator_client, tenant):
    stopped = InstanceFactory(tenant=tenant, state="stopped", name="db-1")
    response = _action(operator_client, "instance", "force_stop", [stopped])
    assert "db-1 is stopped" in response.content.decode().lower()


def test_mark_error_action_asks_for_a_reason(operator_client, tenant):
    instance = InstanceFactory(tenant=tenant, state="rebooting", task="reboot")
    page = _action(operator_client, "instance", "mark_error", [instance], confirmed="yes", note="")
    assert "This field is required" in page.content.decode()
    _action(operator_client, "instance", "mark_error", [instance], confirmed="yes", note="Disk lost on hv-a")
    instance.refresh_from_db()
    assert instance.state == "error"
    assert instance.error_reason == "Disk lost on hv-a"
    event = instance.events.get(action="mark_error")
    assert (event.actor.email, event.message) == ("operator@example.com", "Disk lost on hv-a")


def test_reconcile_now_action(operator_client, running):
    SimulatedDomain.objects.filter(uuid=running.pk).delete()
    response = _action(operator_client, "host", "reconcile_now", [running.host])
    assert "1 vanished" in response.content.decode()
    running.refresh_from_db()
    assert running.state == "error"


def test_destroy_orphan_action(operator_client, host):
    stray = SimulatedDomainFactory(host=host)
    orphan = OrphanDomainFactory(host=host, uuid=str(stray.uuid))
    _action(operator_client, "orphandomain", "destroy_orphans", [orphan])
    orphan.refresh_from_db()
    assert orphan.resolved_at is not None
    assert not SimulatedDomain.objects.filter(uuid=stray.uuid).exists()


def test_destroy_orphan_refuses_a_live_instances_domain(operator_client, running):
    orphan = OrphanDomainFactory(host=running.host, uuid=str(running.pk))
    response = _action(operator_client, "orphandomain", "destroy_orphans", [orphan])
    assert "left alone" in response.content.decode()
    assert SimulatedDomain.objects.filter(uuid=running.pk).exists()
    assert OrphanDomain.objects.get().resolved_at is None


def test_instances_cannot_be_edited_in_the_admin(operator_client, tenant):
    instance = InstanceFactory(tenant=tenant, name="web-1")
    response = operator_client.post(reverse("admin:compute_instance_change", args=[instance.pk]), {"name": "x"})
    assert response.status_code == 403
    assert Instance.objects.get().name == "web-1"


def test_new_hosts_default_to_the_configured_driver(settings):
    from compute.models import Host

    settings.HYPERVISOR_DRIVER = "libvirt"
    assert Host().driver == "libvirt"


def test_a_libvirt_host_needs_a_uri(db):
    from django.core.exceptions import ValidationError

    from compute.models import Host

    host = Host(name="kvm-1", driver="libvirt", vcpus=8, ram_mib=16384, disk_gib=100)
    with pytest.raises(ValidationError) as caught:
        host.full_clean()
    assert "uri" in caught.value.message_dict
    host.uri = "qemu:///system"
    host.full_clean()


@pytest.mark.parametrize("model", ["host", "flavor", "image"])
def test_add_pages_render(operator_client, model):
    assert operator_client.get(reverse(f"admin:compute_{model}_add")).status_code == 200


def test_an_operator_adds_a_host(operator_client):
    from compute.models import Host

    response = operator_client.post(
        reverse("admin:compute_host_add"),
        {
            "name": "sim-c",
            "driver": "simulated",
            "uri": "",
            "enabled": "on",
            "vcpus": 16,
            "ram_mib": 65536,
            "disk_gib": 1000,
            "cpu_allocation_ratio": "4",
            "ram_allocation_ratio": "1",
            "disk_allocation_ratio": "1",
            "boot_seconds": 5,
            "stop_seconds": 3,
            "fail_next_creates": 0,
            "failure_kind": "transient",
            "instances-TOTAL_FORMS": 0,
            "instances-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Host.objects.get(name="sim-c").vcpus_allocatable == 64


def test_make_default_region_acts_on_the_first_selected_region_only(operator_client):
    default, north, south = RegionFactory(), RegionFactory(name="north"), RegionFactory(name="south")

    response = operator_client.post(
        reverse("admin:compute_region_changelist"),
        {"action": "make_default", "_selected_action": [north.pk, south.pk]},
        follow=True,
    )

    assert [region.name for region in Region.objects.filter(is_default=True)] == ["north"]
    assert "Made the default region: 1 done." in response.content.decode()
    default.refresh_from_db()
    assert not default.is_default
