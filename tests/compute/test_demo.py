import io

from django.core.management import call_command

from compute.models import Flavor, Host, Image, Instance, SimulatedDomain


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


def test_seed_demo_gives_the_demo_organisation_lived_in_machines_once(db):
    import time

    from compute.network.models import Network, PublicIP
    from tenants.models import Tenant

    started = time.monotonic()
    call_command("seed_demo", stdout=io.StringIO())
    assert time.monotonic() - started < 10
    call_command("seed_demo", stdout=io.StringIO())

    tenant = Tenant.objects.get(name="Demo Company")
    states = dict(Instance.objects.filter(tenant=tenant).values_list("name", "state"))
    assert states == {
        "web-1": "running",
        "db-1": "running",
        "web-2": "running",
        "batch-1": "stopped",
        "ci-runner": "building",
        "gpu-test": "error",
    }
    assert Instance.objects.get(name="gpu-test").error_reason
    # The hypervisor agrees with the database: the machines that run have running domains.
    powers = dict(SimulatedDomain.objects.values_list("name", "power"))
    assert powers == {"web-1": "running", "db-1": "running", "web-2": "running", "batch-1": "shutoff"}
    assert sorted(PublicIP.objects.filter(tenant=tenant).values_list("instance__name", flat=True)) == ["web-1", "web-2"]
    backend = Network.objects.get(tenant=tenant, name="backend")
    assert sorted(backend.ports.values_list("instance__name", flat=True)) == ["batch-1", "db-1"]


def test_seed_demo_leaves_an_organisation_that_had_machines_alone(db):
    from tenants.models import Tenant

    call_command("seed_demo", stdout=io.StringIO())
    tenant = Tenant.objects.get(name="Demo Company")
    Instance.objects.filter(tenant=tenant, name="gpu-test").update(state="deleted")
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "demo machines are in place" in out.getvalue()
    assert Instance.objects.filter(tenant=tenant).count() == 6
