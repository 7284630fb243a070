"""The catalog kept in memory follows every change of a flavor, image or region at once."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compute import catalog
from compute.models import Flavor, Region
from tests.api.conftest import api_client_for
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory

pytestmark = pytest.mark.django_db


def test_lookups_come_from_memory_until_a_catalog_row_changes():
    flavor, image = FlavorFactory(), ImageFactory()
    assert catalog.flavor(flavor.pk) == flavor and catalog.image(image.pk) == image
    with CaptureQueriesContext(connection) as captured:
        assert catalog.flavor(flavor.pk).vcpus == flavor.vcpus
        assert catalog.image(image.pk).available_in(catalog.default_region() or Region.objects.default_or_create())
    assert captured.captured_queries == []

    flavor.active = False
    flavor.save()
    assert catalog.flavor(flavor.pk).active is False


def test_a_row_made_behind_the_orms_back_is_found_in_the_database():
    catalog.current()
    (made,) = Flavor.objects.bulk_create([Flavor(name="bulk", vcpus=3, ram_mib=2048, disk_gib=20, monthly_price=1)])
    assert catalog.flavor(made.pk).vcpus == 3


def test_without_the_cache_every_lookup_reads_the_database(monkeypatch):
    flavor = FlavorFactory()

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", unreachable)
    assert catalog.flavor(flavor.pk) == flavor
    flavor.vcpus = 7
    flavor.save()
    assert catalog.flavor(flavor.pk).vcpus == 7


def test_a_launch_with_a_flavor_made_inactive_since_the_last_launch_is_refused(member, tenant):
    HostFactory()
    flavor, image = FlavorFactory(), ImageFactory()
    api = api_client_for(member, tenant)
    body = {"flavor": str(flavor.pk), "image": str(image.pk), "name": "first"}
    assert api.post("/api/v1/instances/", body, format="json").status_code == 202

    flavor.active = False
    flavor.save()
    refused = api.post("/api/v1/instances/", {**body, "name": "second"}, format="json")

    assert refused.status_code == 400
    assert "flavor" in refused.json()["error"]["details"]
    unknown = api.post("/api/v1/instances/", {**body, "flavor": "not-a-uuid"}, format="json")
    assert unknown.status_code == 400


def test_pinned_answers_one_version_for_a_short_piece_of_work(monkeypatch):
    """A build checks the version once for its claim and its billing segment; a longer piece of work checks again."""
    flavor = FlavorFactory(vcpus=1)
    catalog.current()
    with catalog.pinned():
        Flavor.objects.filter(pk=flavor.pk).update(vcpus=2)
        catalog.changed()  # as a save announces it in another process
        assert catalog.flavor(flavor.pk).vcpus == 1  # the version checked when the work began
        monkeypatch.setattr(catalog, "PINNED_FOR", 0)
        assert catalog.flavor(flavor.pk).vcpus == 2  # past the pin's age: checked again
    assert catalog.flavor(flavor.pk).vcpus == 2
