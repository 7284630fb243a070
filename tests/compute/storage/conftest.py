import pytest

from compute.storage import services


@pytest.fixture
def make_volume(tenant, member, host, committed):
    """make_volume(name=…, size_gib=…, **overrides): a volume created through the service and the (eager) task."""

    def _make(name="data-1", size_gib=100, **overrides):
        with committed():
            volume = services.volume_create(tenant=tenant, user=member, name=name, size_gib=size_gib, **overrides)
        volume.refresh_from_db()
        return volume

    return _make


@pytest.fixture
def volume(make_volume):
    made = make_volume()
    assert made.state == "available"
    return made


@pytest.fixture
def attached(volume, running, member, committed):
    with committed():
        services.volume_attach(volume=volume, instance=running, user=member)
    volume.refresh_from_db()
    assert volume.state == "in-use"
    return volume
