"""Roles and what each may do; every permission check in the project reads this table."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    BILLING = "billing", "Billing"
    VIEWER = "viewer", "Viewer"


class Permission(models.TextChoices):
    VIEW_RESOURCES = "resources.view", "See machines, keys and their events"
    CHANGE_RESOURCES = "resources.change", "Launch, change and delete machines and keys"
    VIEW_MEMBERS = "members.view", "See the team"
    MANAGE_MEMBERS = "members.manage", "Invite, remove and change the roles of members"
    VIEW_BILLING = "billing.view", "See costs, invoices and credits"
    MANAGE_BILLING = "billing.manage", "Set budgets and billing details"
    MANAGE_TENANT = "tenant.manage", "Rename the organisation and set its security rules"
    VIEW_ACTIVITY = "activity.view", "See the organisation's activity log"


_ALL_VIEW = {Permission.VIEW_RESOURCES, Permission.VIEW_MEMBERS}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Permission.values),
    Role.ADMIN: frozenset(
        _ALL_VIEW | {Permission.CHANGE_RESOURCES, Permission.MANAGE_MEMBERS, Permission.VIEW_ACTIVITY}
    ),
    Role.MEMBER: frozenset(_ALL_VIEW | {Permission.CHANGE_RESOURCES}),
    Role.BILLING: frozenset(_ALL_VIEW | {Permission.VIEW_BILLING, Permission.MANAGE_BILLING}),
    Role.VIEWER: frozenset(_ALL_VIEW),
}

# Roles an inviter may hand out: only owners make owners.
GRANTABLE_ROLES: dict[str, tuple[str, ...]] = {
    Role.OWNER: tuple(Role.values),
    Role.ADMIN: (Role.ADMIN, Role.MEMBER, Role.BILLING, Role.VIEWER),
}


def role_has(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
