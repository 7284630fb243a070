"""Fills the running usage totals of quotas and hosts from the instance rows (compute.services.usage keeps them)."""

from collections import defaultdict

from django.db import migrations


def count(apps, schema_editor):
    Flavor = apps.get_model("compute", "Flavor")
    Host = apps.get_model("compute", "Host")
    Instance = apps.get_model("compute", "Instance")
    Quota = apps.get_model("tenants", "Quota")
    sizes = {row[0]: row[1:] for row in Flavor.objects.values_list("id", "vcpus", "ram_mib", "disk_gib")}
    tenants = defaultdict(lambda: [0, 0, 0])
    hosts = defaultdict(lambda: [0, 0, 0, 0])
    rows = Instance.objects.exclude(state="deleted").values_list(
        "tenant_id", "host_id", "migration_host_id", "flavor_id", "resize_flavor_id"
    )
    for tenant_id, host_id, migration_host_id, flavor_id, resize_flavor_id in rows.iterator():
        size = sizes[flavor_id]
        resize = sizes[resize_flavor_id] if resize_flavor_id else size
        vcpus, ram, disk = (max(a, b) for a, b in zip(size, resize, strict=True))
        held = tenants[tenant_id]
        held[0], held[1], held[2] = held[0] + 1, held[1] + vcpus, held[2] + ram
        for target, instances in ((host_id, 1), (migration_host_id, 0)):
            if target is not None:
                on = hosts[target]
                on[0], on[1], on[2], on[3] = on[0] + vcpus, on[1] + ram, on[2] + disk, on[3] + instances
    for tenant_id, (instances, vcpus, ram) in tenants.items():
        Quota.objects.filter(tenant_id=tenant_id).update(held_instances=instances, held_vcpus=vcpus, held_ram_mib=ram)
    for host_id, (vcpus, ram, disk, instances) in hosts.items():
        Host.objects.filter(pk=host_id).update(
            held_vcpus=vcpus, held_ram_mib=ram, held_disk_gib=disk, held_instances=instances
        )


class Migration(migrations.Migration):
    dependencies = [
        ("compute", "0007_host_held_totals"),
        ("tenants", "0010_quota_held_totals"),
    ]

    operations = [migrations.RunPython(count, migrations.RunPython.noop)]
