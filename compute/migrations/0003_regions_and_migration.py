import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


def create_default_region(apps, schema_editor):
    """Every installation starts with one region (operators rename it or add more); existing hosts and instances
    stand in it."""
    Region = apps.get_model("compute", "Region")
    Host = apps.get_model("compute", "Host")
    Instance = apps.get_model("compute", "Instance")
    region = Region.objects.filter(is_default=True).first()
    if region is None:
        region = Region.objects.create(name="default", label="Default region", is_default=True)
    Host.objects.filter(region__isnull=True).update(region=region)
    Instance.objects.filter(region__isnull=True).update(region=region)


class Migration(migrations.Migration):
    """Regions (hosts stand in one, images may be limited to some, instances launch into one) and cold migration
    between hosts (host evacuation): the `migrating` state, its task and the host the move goes to."""

    dependencies = [
        ('compute', '0002_event_shape'),
        ('tenants', '0004_tenant_standing'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Region',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.SlugField(help_text='Short identifier users and the API see, e.g. fsn1 or eu-central.', max_length=32, unique=True)),
                ('label', models.CharField(help_text='How pages name it, e.g. Falkenstein, Germany.', max_length=100)),
                ('is_default', models.BooleanField(default=False, help_text='Preselected on the launch form and used by the API when none is named.', verbose_name='default')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.AlterModelOptions(
            name='instance',
            options={'ordering': ['-created_at', 'id'], 'permissions': [('reconcile', 'Can run the reconciler now'), ('retry_instance', 'Can retry a failed provisioning')]},
        ),
        migrations.RemoveConstraint(
            model_name='instance',
            name='instance_state_valid',
        ),
        migrations.AddField(
            model_name='host',
            name='storage_pool',
            field=models.SlugField(blank=True, default='hangar', help_text='Where instance disks live on a libvirt host (empty: hangar). Hosts sharing one libvirt daemon need different pools.', max_length=64, verbose_name='libvirt storage pool'),
        ),
        migrations.AddField(
            model_name='instance',
            name='migration_host',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='incoming_instances', to='compute.host'),
        ),
        migrations.AlterField(
            model_name='instance',
            name='state',
            field=models.CharField(choices=[('pending', 'Pending'), ('building', 'Building'), ('running', 'Running'), ('stopping', 'Stopping'), ('stopped', 'Stopped'), ('starting', 'Starting'), ('rebooting', 'Rebooting'), ('resizing', 'Resizing'), ('migrating', 'Moving to another host'), ('deleting', 'Deleting'), ('deleted', 'Deleted'), ('error', 'Error')], default='pending', max_length=16),
        ),
        migrations.AlterField(
            model_name='instance',
            name='task',
            field=models.CharField(blank=True, choices=[('', 'none'), ('build', 'build'), ('start', 'start'), ('stop', 'stop'), ('reboot', 'reboot'), ('resize', 'resize'), ('migrate', 'migrate'), ('delete', 'delete')], default='', max_length=16),
        ),
        migrations.AlterField(
            model_name='instanceevent',
            name='action',
            field=models.CharField(choices=[('launch', 'Launch'), ('build', 'Build'), ('start', 'Start'), ('stop', 'Stop'), ('force_stop', 'Force stop'), ('reboot', 'Reboot'), ('resize', 'Resize'), ('delete', 'Delete'), ('rename', 'Rename'), ('mark_error', 'Mark as error'), ('migrate', 'Move to another host'), ('retry', 'Retry provisioning'), ('reconcile', 'Reconcile')], max_length=32),
        ),
        migrations.AddConstraint(
            model_name='region',
            constraint=models.UniqueConstraint(condition=models.Q(('is_default', True)), fields=('is_default',), name='region_one_default'),
        ),
        migrations.AddField(
            model_name='host',
            name='region',
            field=models.ForeignKey(blank=True, help_text='Empty: the default region.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='hosts', to='compute.region'),
        ),
        migrations.AddField(
            model_name='image',
            name='regions',
            field=models.ManyToManyField(blank=True, help_text='The regions whose hosts have its files; none selected: every region.', related_name='images', to='compute.region'),
        ),
        migrations.AddField(
            model_name='instance',
            name='region',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='instances', to='compute.region'),
        ),
        migrations.AddConstraint(
            model_name='instance',
            constraint=models.CheckConstraint(condition=models.Q(('state__in', ['pending', 'building', 'running', 'stopping', 'stopped', 'starting', 'rebooting', 'resizing', 'migrating', 'deleting', 'deleted', 'error'])), name='instance_state_valid'),
        ),
        migrations.RunPython(create_default_region, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='host',
            name='region',
            field=models.ForeignKey(blank=True, help_text='Empty: the default region.', on_delete=django.db.models.deletion.PROTECT, related_name='hosts', to='compute.region'),
        ),
    ]
