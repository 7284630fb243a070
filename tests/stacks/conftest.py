import pytest

from tests.api.conftest import member_api, owner_api, viewer_api  # noqa: F401  (the API clients)
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, new_public_key


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed():` runs the on-commit callbacks (the enqueued tasks, eagerly) as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def catalog(db):
    HostFactory(name="hv-stack", vcpus=64, ram_mib=262144, disk_gib=4000, boot_seconds=0, stop_seconds=0)
    return {
        "small": FlavorFactory(name="s1", vcpus=1, ram_mib=1024, disk_gib=20, monthly_price="5.00"),
        "medium": FlavorFactory(name="s2", vcpus=2, ram_mib=2048, disk_gib=40, monthly_price="10.00"),
        "large": FlavorFactory(name="s3", vcpus=4, ram_mib=4096, disk_gib=80, monthly_price="20.00"),
        "tiny": FlavorFactory(name="s0", vcpus=1, ram_mib=512, disk_gib=10, monthly_price="2.50"),
        "image": ImageFactory(name="debian-12"),
        "image2": ImageFactory(name="ubuntu-24"),
    }


@pytest.fixture
def public_key():
    return new_public_key()
