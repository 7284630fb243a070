"""The compute cards on the dashboard's home page."""

from django.urls import reverse

from tests.factories.compute import FlavorFactory, InstanceFactory


def test_home_shows_instances_and_quota_usage(owner_client, tenant):
    flavor = FlavorFactory(vcpus=4, ram_mib=8192)
    InstanceFactory(tenant=tenant, flavor=flavor)
    InstanceFactory(tenant=tenant, flavor=flavor, state="stopped")
    InstanceFactory(tenant=tenant, flavor=flavor, state="deleted")

    response = owner_client.get(reverse("home"))

    cards = {card["label"]: card for card in response.context["summary"]["cards"]}
    assert cards["Instances"]["value"] == "1 / 2"
    assert cards["vCPUs"]["value"] == "8 / 32"
    assert cards["vCPUs"]["percent"] == 25
    assert cards["RAM"]["value"] == "16 / 64 GiB"
    assert cards["Instances"]["url"] == reverse("compute:instance-list")
