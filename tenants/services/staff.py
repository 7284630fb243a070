"""The two staff roles, as groups: `operators` may do everything in the admin; `support` reads everything and acts
only on what cannot hurt (run the reconciler, retry a failed provisioning).

Made by a migration (portal/migrations) and kept in step with the permissions after every `migrate`, so a model
added later (networks, volumes) is readable by support and managed by operators without another migration.
"""

OPERATORS = "operators"
SUPPORT = "support"
# Apps whose admin pages staff use (app labels: these names are never imported here).
STAFF_APPS = ("tenants", "compute", "billing", "auth", "admin", "django_celery_beat", "axes")
SUPPORT_ACTIONS = ("reconcile", "retry_instance")


def staff_groups_sync(*, group_model, permission_model) -> None:
    """Creates both groups if missing and gives them exactly their permissions (models passed in, so a migration
    can run it on its historical models)."""
    in_scope = permission_model.objects.filter(content_type__app_label__in=STAFF_APPS)
    operators, _ = group_model.objects.get_or_create(name=OPERATORS)
    operators.permissions.set(in_scope)
    support, _ = group_model.objects.get_or_create(name=SUPPORT)
    support.permissions.set(
        in_scope.filter(codename__startswith="view_") | in_scope.filter(codename__in=SUPPORT_ACTIONS)
    )
