import pytest

from compute.network.models import PublicIPPool


@pytest.fixture
def pool(db):
    """The documentation range as a public pool: 203.0.113.2 to .254 (.1 is the provider's gateway)."""
    return PublicIPPool.objects.create(name="test-pool", cidr="203.0.113.0/24", excluded="203.0.113.1")


@pytest.fixture
def small_pool(db):
    """Three addresses: 198.51.100.2 to .4 (a /29 without .1, .5 and .6)."""
    return PublicIPPool.objects.create(
        name="small-pool", cidr="198.51.100.0/29", excluded="198.51.100.1, 198.51.100.5-198.51.100.6"
    )


@pytest.fixture
def simulated(host):
    """The simulated driver of the `host` fixture: its recorded networking and its firewall model."""
    from compute.drivers import driver_for

    return driver_for(host)
