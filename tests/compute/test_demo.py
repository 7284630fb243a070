import io

from django.core.management import call_command

from compute.models import Flavor, Host, Image


def test_seed_demo_adds_the_catalog_and_hosts_once(db):
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())

    flavors = list(Flavor.objects.order_by("vcpus", "ram_mib"))
    assert len(flavors) == 6
    assert (flavors[0].vcpus, flavors[0].ram_mib) == (1, 1024)
    assert (flavors[-1].vcpus, flavors[-1].ram_mib) == (8, 32768)
    assert all(flavor.monthly_price > 0 for flavor in flavors)
    assert Image.objects.count() == 4
    assert {"Debian", "Ubuntu", "Rocky Linux", "Alpine"} == set(Image.objects.values_list("os", flat=True))
    assert list(Host.objects.values_list("name", "driver")) == [("sim-a", "simulated"), ("sim-b", "simulated")]
    assert all(host.boot_seconds > 0 for host in Host.objects.all())


def test_seed_demo_adds_a_public_pool_in_the_documentation_range_once(db):
    from compute.network.models import Network, PublicIPPool

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    pool = PublicIPPool.objects.get()
    assert (pool.cidr, pool.excluded) == ("203.0.113.0/24", "203.0.113.1")
    assert Network.objects.filter(is_default=True).count() == 1  # the demo organisation's, made when it was created
