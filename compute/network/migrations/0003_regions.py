"""Networks and public-IP pools stand in a region, like hosts: a machine joins networks of its own region, and a
public address reaches machines of its pool's region. Existing ones go to the default region; every organisation
has a default network per region (made when first needed)."""

import django.db.models.deletion
from django.db import migrations, models


def to_default_region(apps, schema_editor):
    Region = apps.get_model("compute", "Region")
    Network = apps.get_model("network", "Network")
    PublicIPPool = apps.get_model("network", "PublicIPPool")
    if not Network.objects.exists() and not PublicIPPool.objects.exists():
        return
    region = Region.objects.filter(is_default=True).first() or Region.objects.order_by("name").first()
    if region is None:
        region = Region.objects.create(name="default", label="Default region", is_default=True)
    Network.objects.filter(region__isnull=True).update(region=region)
    PublicIPPool.objects.filter(region__isnull=True).update(region=region)


class Migration(migrations.Migration):
    dependencies = [
        ("compute", "0004_networking_fields"),
        ("network", "0002_defaults_for_existing_tenants"),
    ]

    operations = [
        migrations.AddField(
            model_name="network",
            name="region",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="networks", to="compute.region"
            ),
        ),
        migrations.AddField(
            model_name="publicippool",
            name="region",
            field=models.ForeignKey(
                null=True,
                help_text="Its addresses reach machines of this region's hosts only.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="public_ip_pools",
                to="compute.region",
            ),
        ),
        migrations.RunPython(to_default_region, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="network",
            name="region",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="networks", to="compute.region"
            ),
        ),
        migrations.AlterField(
            model_name="publicippool",
            name="region",
            field=models.ForeignKey(
                blank=True,
                help_text="Its addresses reach machines of this region's hosts only. Empty: the default region.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="public_ip_pools",
                to="compute.region",
            ),
        ),
        migrations.RemoveConstraint(model_name="network", name="network_one_default_per_tenant"),
        migrations.AddConstraint(
            model_name="network",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_default", True)),
                fields=("tenant", "region"),
                name="network_one_default_per_tenant_region",
            ),
        ),
    ]
