"""Demo catalog, simulated hosts and the demo organisation's machines for `manage.py seed_demo`; idempotent."""

# write-ok-file: the demo catalog and host, written once by `manage.py seed_demo`

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from compute import services
from compute.models import DiskFormat, Flavor, Host, Image, Instance, InstanceState, InstanceTask
from compute.network import services as network_services
from compute.network.models import Firewall, Network
from compute.services.operations import instance_task_claim, instance_task_perform

# name, vCPUs, RAM MiB, disk GiB, monthly price (in settings.BILLING_CURRENCY)
FLAVORS = [
    ("c1.micro", 1, 1024, 25, Decimal("4.50")),
    ("c1.small", 1, 2048, 50, Decimal("7.90")),
    ("c2.medium", 2, 4096, 80, Decimal("14.90")),
    ("c4.large", 4, 8192, 160, Decimal("28.90")),
    ("c8.xlarge", 8, 16384, 240, Decimal("54.90")),
    ("m8.2xlarge", 8, 32768, 320, Decimal("79.90")),
]

# name, OS, version, minimum disk GiB, minimum RAM MiB, base disk file
IMAGES = [
    ("Debian 12", "Debian", "12", 2, 512, "debian-12.qcow2"),
    ("Ubuntu 24.04 LTS", "Ubuntu", "24.04", 4, 1024, "ubuntu-24.04.qcow2"),
    ("Rocky Linux 9", "Rocky Linux", "9", 10, 1024, "rocky-9.qcow2"),
    ("Alpine 3.20", "Alpine", "3.20", 1, 256, "alpine-3.20.qcow2"),
]

# Simulated hosts boot in a few seconds so that the dashboard shows pending → building → running.
HOSTS = [
    ("sim-a", 32, 131072, 2000),
    ("sim-b", 32, 131072, 2000),
]


def seed(*, tenant, stdout) -> None:
    """Adds the missing flavors, images and simulated hosts; existing rows are left as operators changed them."""
    added = []
    for name, vcpus, ram_mib, disk_gib, price in FLAVORS:
        _, created = Flavor.objects.get_or_create(
            name=name, defaults={"vcpus": vcpus, "ram_mib": ram_mib, "disk_gib": disk_gib, "monthly_price": price}
        )
        if created:
            added.append(f"flavor {name}")
    for name, os_name, version, min_disk, min_ram, file_name in IMAGES:
        _, created = Image.objects.get_or_create(
            name=name,
            defaults={
                "os": os_name,
                "version": version,
                "min_disk_gib": min_disk,
                "min_ram_mib": min_ram,
                "disk_path": str(settings.HANGAR_IMAGE_DIR / file_name),
                "disk_format": DiskFormat.QCOW2,
            },
        )
        if created:
            added.append(f"image {name}")
    for name, vcpus, ram_mib, disk_gib in HOSTS:
        _, created = Host.objects.get_or_create(
            name=name,
            defaults={
                "driver": "simulated",
                "vcpus": vcpus,
                "ram_mib": ram_mib,
                "disk_gib": disk_gib,
                "boot_seconds": 5,
                "stop_seconds": 3,
            },
        )
        if created:
            added.append(f"host {name}")
    stdout.write(f"Compute: added {', '.join(added)}." if added else "Compute: catalog and hosts already in place.")


@dataclass(frozen=True)
class DemoMachine:
    """One machine of the demo organisation: the state it is left in, and how long ago it was launched (billing
    backdates its segments to that day, so the past months have invoices)."""

    name: str
    flavor: str
    image: str
    state: str
    age_days: int = 0
    public_ip: bool = False
    backend: bool = False  # also on the private "backend" network


MACHINES = [
    DemoMachine("web-1", "c2.medium", "Debian 12", InstanceState.RUNNING, age_days=104, public_ip=True),
    DemoMachine("db-1", "c4.large", "Debian 12", InstanceState.RUNNING, age_days=104, backend=True),
    DemoMachine("web-2", "c2.medium", "Ubuntu 24.04 LTS", InstanceState.RUNNING, age_days=58, public_ip=True),
    DemoMachine("batch-1", "c1.small", "Rocky Linux 9", InstanceState.STOPPED, age_days=75, backend=True),
    DemoMachine("ci-runner", "c1.micro", "Alpine 3.20", InstanceState.BUILDING),
    DemoMachine("gpu-test", "c1.micro", "Ubuntu 24.04 LTS", InstanceState.ERROR),
]
DEMO_KEY = (
    "dana-laptop",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIq7YytVvrPhP7lzguB6NfmqYsSm0ERUfG3OXEaOLJ5Y dana@laptop",
)
BACKEND_NETWORK = ("backend", "10.20.0.0/24")
ERROR_REASON = "The image could not be copied to the host: its storage pool is full (simulated failure)."


def seed_machines(*, tenant, stdout) -> None:
    """Gives the demo organisation its machines once (an organisation that ever had machines is left alone): they
    are launched and driven through the real services and tasks, run here in-line on the simulated hosts.

    The hosts boot and stop instantly while this runs (their knobs are set back before the transaction commits), so
    seeding stays fast; `ci-runner` is left `building` and the worker finishes it a few seconds after start-up.
    """
    if Instance.objects.filter(tenant=tenant).exists():  # deleted ones too: what its people removed stays gone
        stdout.write("Compute: the demo machines are in place.")
        return
    owner = tenant.memberships.filter(role="owner").select_related("user").first().user
    key = services.sshkey_create(tenant=tenant, user=owner, name=DEMO_KEY[0], public_key=DEMO_KEY[1])
    default_network = Network.objects.get(tenant=tenant, is_default=True)
    firewall = Firewall.objects.filter(tenant=tenant).order_by("name").first()
    backend = network_services.network_create(
        tenant=tenant, user=owner, name=BACKEND_NETWORK[0], cidr=BACKEND_NETWORK[1], region=default_network.region
    )
    hosts = list(Host.objects.filter(driver="simulated"))
    knobs = {host.pk: (host.boot_seconds, host.stop_seconds) for host in hosts}
    Host.objects.filter(pk__in=knobs).update(boot_seconds=0, stop_seconds=0)
    try:
        for machine in MACHINES:
            networks = [default_network, backend] if machine.backend else [default_network]
            _launch(tenant=tenant, owner=owner, machine=machine, key=key, networks=networks, firewall=firewall)
    finally:
        for pk, (boot, stop) in knobs.items():
            Host.objects.filter(pk=pk).update(boot_seconds=boot, stop_seconds=stop)
    stdout.write(
        f"Compute: launched the demo machines ({', '.join(m.name for m in MACHINES)}) and the backend network."
    )


def _launch(*, tenant, owner, machine: DemoMachine, key, networks, firewall) -> Instance:
    instance = services.instance_launch(
        tenant=tenant,
        user=owner,
        name=machine.name,
        flavor=Flavor.objects.get(name=machine.flavor),
        image=Image.objects.get(name=machine.image),
        keys=[key],
        networks=networks,
        firewalls=[firewall] if firewall else [],
        public_ip=machine.public_ip,
    )
    pk = str(instance.pk)
    if machine.state == InstanceState.BUILDING:
        instance_task_claim(instance_id=pk, task=InstanceTask.BUILD)  # the worker's build picks it up from here
    elif machine.state == InstanceState.ERROR:
        instance_task_claim(instance_id=pk, task=InstanceTask.BUILD)
        services.instance_build_failed(instance_id=pk, reason=ERROR_REASON)
    else:
        instance_task_perform(instance_id=pk, task=InstanceTask.BUILD)
        if machine.state == InstanceState.STOPPED:
            services.instance_stop(instance=Instance.objects.get(pk=pk), user=owner)
            instance_task_perform(instance_id=pk, task=InstanceTask.STOP)
    if machine.age_days:
        # Launched that long ago: the machine's own dates (billing backdates its segments to the same day).
        launched = timezone.now() - timedelta(days=machine.age_days)
        Instance.objects.filter(pk=pk).update(created_at=launched)
    return Instance.objects.get(pk=pk)
