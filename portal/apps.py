from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_staff_groups(sender, **kwargs) -> None:
    """After every migrate: permissions of models added since (by any app) join the staff groups."""
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    if sender is not list(apps.get_app_configs())[-1]:
        return  # Django makes each app's permissions in its own post_migrate: wait for the last one

    from tenants.services.staff import staff_groups_sync

    staff_groups_sync(group_model=Group, permission_model=Permission)


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        post_migrate.connect(_sync_staff_groups, dispatch_uid="hangar-staff-groups")
