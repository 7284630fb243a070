"""Operators' networking admin: pools with their usage, the addresses tenants hold (released through the service)."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from billing.models import Segment
from compute.drivers.base import InterfaceCounters
from compute.network.models import PublicIP, PublicIPPool
from compute.network.services import firewall_create, network_create, public_ip_allocate
from compute.network.services.traffic import traffic_record
from tests.conftest import login_client
from tests.factories.tenants import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(db):
    return login_client(UserFactory(email="operator@example.com", is_staff=True, is_superuser=True))


@pytest.mark.parametrize(
    "model",
    [
        "publicippool",
        "publicip",
        "network",
        "firewall",
        "trafficusage",
        "networkevent",
        "simulatednetwork",
        "simulatednat",
    ],
)
def test_changelists_and_change_pages_render(
    operator_client, tenant, member, pool, running, model, django_assert_max_num_queries
):
    public_ip = public_ip_allocate(tenant=tenant, user=member, instance=running)
    network = network_create(tenant=tenant, user=member, name="backend", cidr="10.30.0.0/24")
    firewall = firewall_create(tenant=tenant, user=member, name="web")
    traffic_record(instance=running, counters=InterfaceCounters(rx_bytes=10, tx_bytes=20))
    with django_assert_max_num_queries(20):
        response = operator_client.get(reverse(f"admin:network_{model}_changelist"))
    assert response.status_code == 200
    objects = {"publicippool": pool, "publicip": public_ip, "network": network, "firewall": firewall}
    if model in objects:
        response = operator_client.get(reverse(f"admin:network_{model}_change", args=[objects[model].pk]))
        assert response.status_code == 200


def test_a_pools_usage_and_a_bad_range_or_exclusion(operator_client, pool, tenant, member):
    public_ip_allocate(tenant=tenant, user=member)
    page = operator_client.get(reverse("admin:network_publicippool_changelist")).content.decode()
    assert "253" in page  # 203.0.113.2 to .254
    assert ">1</a>" in page
    response = operator_client.post(
        reverse("admin:network_publicippool_add"),
        {"name": "bad", "cidr": "203.0.113.7/24", "excluded": "", "active": "on"},
    )
    assert "did you mean 203.0.113.0/24?" in response.content.decode()
    response = operator_client.post(
        reverse("admin:network_publicippool_add"),
        {"name": "bad", "cidr": "198.51.100.0/24", "excluded": "198.51.100.9-198.51.100.3", "active": "on"},
    )
    assert "The range 198.51.100.9-198.51.100.3 runs backwards." in response.content.decode()
    assert not PublicIPPool.objects.filter(name="bad").exists()


def test_releasing_from_the_admin_goes_through_the_service(operator_client, pool, tenant, member):
    public_ip = public_ip_allocate(tenant=tenant, user=member)
    operator_client.post(
        reverse("admin:network_publicip_changelist"), {"action": "release", ACTION_CHECKBOX_NAME: [public_ip.pk]}
    )
    public_ip.refresh_from_db()
    assert public_ip.state == "released"
    assert Segment.objects.get(resource_id=public_ip.pk).ended_at is not None
    assert PublicIP.objects.held().count() == 0
