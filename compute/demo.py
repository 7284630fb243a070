"""Demo catalog and simulated hosts for `manage.py seed_demo`; idempotent (rows are found by name)."""

# write-ok-file: the demo catalog and host, written once by `manage.py seed_demo`

from decimal import Decimal

from django.conf import settings

from compute.models import DiskFormat, Flavor, Host, Image

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
