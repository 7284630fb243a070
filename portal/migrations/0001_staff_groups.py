from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_staff_groups(apps, schema_editor):
    """The operators and support groups with their permissions (tenants.services.staff); permissions are made here
    first, since Django only makes them after the last migration."""
    from tenants.services.staff import staff_groups_sync

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    staff_groups_sync(group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission"))


def remove_staff_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["operators", "support"]).delete()


class Migration(migrations.Migration):
    """Staff roles as groups: operators (everything) and support (read everything; reconcile and retry)."""

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tenants", "0004_tenant_standing"),
        ("compute", "0003_regions_and_migration"),
        ("billing", "0006_event_shape"),
    ]

    operations = [migrations.RunPython(create_staff_groups, remove_staff_groups)]
