import pytest

from tests.compute.real_guests import demo_image, guest_api, ssh_key  # noqa: F401  (real guests, for every module)
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, SSHKeyFactory


@pytest.fixture
def host(db):
    """One simulated host that boots and stops instantly."""
    return HostFactory(name="hv-test", vcpus=16, ram_mib=65536, disk_gib=1000, boot_seconds=0, stop_seconds=0)


@pytest.fixture
def flavor(db):
    return FlavorFactory(name="s2.medium", vcpus=2, ram_mib=4096, disk_gib=40)


@pytest.fixture
def big_flavor(db):
    return FlavorFactory(name="s4.large", vcpus=4, ram_mib=8192, disk_gib=80)


@pytest.fixture
def image(db):
    return ImageFactory(name="Debian 12", os="Debian", version="12")


@pytest.fixture
def key(tenant):
    return SSHKeyFactory(tenant=tenant, name="laptop")


@pytest.fixture
def launch(tenant, member, flavor, image, host):
    """launch(name=…, **overrides): an instance launched through the service (the build runs eagerly)."""
    from compute.services import instance_launch

    def _launch(name="web-1", **overrides):
        arguments = {"tenant": tenant, "user": member, "name": name, "flavor": flavor, "image": image, "keys": []}
        arguments.update(overrides)
        return instance_launch(**arguments)

    return _launch


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed():` runs the on-commit callbacks (the enqueued tasks, eagerly) as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def running(launch, committed):
    """A running instance, launched and built through the services and the (eager) build task."""
    with committed():
        instance = launch()
    instance.refresh_from_db()
    assert instance.state == "running"
    return instance


@pytest.fixture
def announced():
    """Records the lifecycle facts the compute services announce to billing, in order."""
    from compute import lifecycle

    calls = []

    def billable(*, fact, at, **_):
        calls.append(("billable", fact.flavor_id))

    def repriced(*, fact, at, **_):
        calls.append(("repriced", fact.flavor_id))

    def ended(*, resource_id, at, **_):
        calls.append(("ended", resource_id))

    lifecycle.resource_billable.connect(billable)
    lifecycle.resource_repriced.connect(repriced)
    lifecycle.resource_ended.connect(ended)
    yield calls
    lifecycle.resource_billable.disconnect(billable)
    lifecycle.resource_repriced.disconnect(repriced)
    lifecycle.resource_ended.disconnect(ended)
