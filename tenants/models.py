"""Organisations, the people in them, and the abstract base every tenant-owned model inherits."""

import hashlib
import ipaddress
import secrets
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from tenants.roles import Role, role_has


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)  # write-ok: Django's user manager API
        return user

    def create_user(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        fields.setdefault("email_verified_at", timezone.now())
        return self._create(email, password, **fields)


class User(AbstractUser):
    """A person who logs in with their e-mail address."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    # Set when the owner of the address followed the link e-mailed at sign-up (or was invited to it).
    email_verified_at = models.DateTimeField("e-mail verified", null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.display_name

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class Tenant(models.Model):
    """An organisation: billed as one customer, owns every resource its members create."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        HOLD = "hold", "On hold"
        SUSPENDED = "suspended", "Suspended"

    class StatusReason(models.TextChoices):
        NONE = "", "—"
        CREDIT = "credit", "Credit limit exceeded"
        OPERATOR = "operator", "Set by an operator"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    # The standing: written only by tenants.services (tenant_hold, tenant_suspend, tenant_resume).
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=16, choices=StatusReason.choices, default="", blank=True)
    hold_since = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    # Set by an owner (tenants.services.tenant_require_two_factor): members without it are led to enrol first.
    two_factor_required = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def accepts_new_resources(self) -> bool:
        return self.status == self.Status.ACTIVE


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant):
        if tenant is None:
            # Scoping to "no tenant" would silently return everything to a caller that lost its tenant.
            raise ValueError(f"{self.model.__name__} was queried without a tenant.")
        return self.filter(tenant=tenant)


class Membership(models.Model):
    """A user's role in one tenant."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.tenant} ({self.role})"

    def has(self, permission: str) -> bool:
        return role_has(self.role, permission)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(TenantQuerySet):
    def pending(self):
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


class Invitation(models.Model):
    """An e-mailed, expiring, single-use offer to join a tenant with a role; only the token's hash is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "tenant",
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant}"

    @staticmethod
    def new_token() -> tuple[str, str]:
        token = secrets.token_urlsafe(32)
        return token, _hash_token(token)

    @staticmethod
    def hash_token(token: str) -> str:
        return _hash_token(token)

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and not self.is_expired

    def is_addressed_to(self, user) -> bool:
        """Only the account with the invited address may accept; addresses compare case-insensitively."""
        return user.email.lower() == self.email.lower()


class Quota(models.Model):
    """The most a tenant may hold at once; launches check it under a lock on this row."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="quota", primary_key=True)
    instances = models.PositiveIntegerField()
    vcpus = models.PositiveIntegerField("vCPUs")
    ram_mib = models.PositiveIntegerField("RAM (MiB)")
    volume_gb = models.PositiveIntegerField("volume storage (GiB)")
    volumes = models.PositiveIntegerField("volumes", default=10)
    public_ips = models.PositiveIntegerField("public IPs")

    def __str__(self) -> str:
        return f"Quota of {self.tenant}"

    @classmethod
    def defaults(cls) -> dict[str, int]:
        return dict(settings.DEFAULT_QUOTA)


class TenantOwned(models.Model):
    """Abstract base of every model that belongs to one tenant; views reach it only through TenantScopedMixin."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class EventResult(models.TextChoices):
    REQUESTED = "requested", "Requested"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused"


class Event(TenantOwned):
    """Abstract base of every app's event log: who (None: the system) did what, when, and with what result.

    Each app keeps its own log on this shape (TenantEvent here, compute's InstanceEvent, billing's AccountEvent)
    and writes it only through its `services/events.py`.
    """

    Result = EventResult

    action = models.CharField(max_length=32)
    result = models.CharField(max_length=16, choices=EventResult.choices, default=EventResult.SUCCEEDED)
    message = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.message}" if self.message else self.get_action_display()

    def get_action_display(self) -> str:
        return dict(self._meta.get_field("action").choices or ()).get(self.action, self.action)


class TenantEvent(Event):
    """The organisation's own log: members and roles, invitations, API tokens, standing (hold, suspend, resume)."""

    class Action(models.TextChoices):
        RENAME = "rename", "Organisation renamed"
        ROLE_CHANGE = "role_change", "Role changed"
        MEMBER_REMOVE = "member_remove", "Member removed"
        INVITE = "invite", "Invitation sent"
        INVITE_ACCEPT = "invite_accept", "Invitation accepted"
        INVITE_REVOKE = "invite_revoke", "Invitation withdrawn"
        TOKEN_CREATE = "token_create", "API token created"
        TOKEN_REVOKE = "token_revoke", "API token revoked"
        TOKEN_REFUSED = "token_refused", "API token refused"
        TWO_FACTOR = "two_factor", "Two-factor requirement changed"
        HOLD = "hold", "Put on hold"
        SUSPEND = "suspend", "Suspended"
        RESUME = "resume", "Resumed"
        QUOTA_CHANGE = "quota_change", "Quota changed"

    action = models.CharField(max_length=32, choices=Action.choices)

    class Meta(Event.Meta):
        indexes = [models.Index(fields=["tenant", "-created_at"], name="tenantevent_tenant_time")]


class ApiTokenQuerySet(TenantQuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(TenantOwned):
    """A personal API credential bound to one user and one tenant; only the secret's sha256 is stored."""

    PREFIX = "hgr_"

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        READ_WRITE = "read_write", "Read and write"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The public part of the token ("hgr_" + 8 characters): shown in lists so a leaked token can be recognised.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ_WRITE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # CIDR strings such as "203.0.113.0/24"; empty: any address may use the token.
    allowed_networks = models.JSONField(default=list, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField("last used from", null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=["read", "read_write"]), name="apitoken_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def new_secret(cls) -> tuple[str, str, str]:
        """A fresh (token, prefix, hash): the token is `<prefix>_<secret>` and is handed out exactly once."""
        prefix = cls.PREFIX + secrets.token_hex(4)
        token = f"{prefix}_{secrets.token_urlsafe(32)}"
        return token, prefix, _hash_token(token)

    @staticmethod
    def hash_token(token: str) -> str:
        return _hash_token(token)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.is_expired else "active"

    @property
    def allows_writes(self) -> bool:
        return self.scope == self.Scope.READ_WRITE

    def allows_address(self, address: str | None) -> bool:
        """True when the token has no network list, or `address` lies in one of its networks."""
        if not self.allowed_networks:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(network) for network in self.allowed_networks)


class IdempotencyKey(models.Model):
    """The first response to a POST sent with an Idempotency-Key, replayed to retries for 24 hours."""

    # "token:<uuid>" or "user:<id>": keys are private to the credential (or browser user) that sent them.
    owner = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    # sha256 of method, path and body: the same key with another request is refused, not replayed.
    fingerprint = models.CharField(max_length=64)
    # Null while the first request is still being handled; a concurrent retry then gets 409.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotencykey_unique_owner_key")]

    def __str__(self) -> str:
        return f"{self.owner} · {self.key}"


class ActivityEntry(TenantOwned):
    """One line of an organisation's activity log: who (member, token, operator or the system) changed what, when,
    from where and with what outcome. Written only by tenants.services.activity_record."""

    class Channel(models.TextChoices):
        DASHBOARD = "dashboard", "Dashboard"
        API = "api", "API"
        ADMIN = "admin", "Operator admin"
        SYSTEM = "system", "System"

    class ResourceType(models.TextChoices):
        ORGANISATION = "organisation", "Organisation"
        MEMBER = "member", "Member"
        INVITATION = "invitation", "Invitation"
        API_TOKEN = "api_token", "API token"
        INSTANCE = "instance", "Instance"
        SSH_KEY = "ssh_key", "SSH key"
        BILLING = "billing", "Billing settings"
        INVOICE = "invoice", "Invoice"
        NETWORK = "network", "Network"
        PUBLIC_IP = "public_ip", "Public IP"
        FIREWALL = "firewall", "Firewall"
        VOLUME = "volume", "Volume"
        SNAPSHOT = "snapshot", "Snapshot"
        BACKUP = "backup", "Backup"
        IMAGE = "image", "Image"
        STACK = "stack", "Stack"
        ALERT_POLICY = "alert_policy", "Alert policy"

    Outcome = EventResult

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The actor's address when it happened: the entry still says who after the account is gone.
    actor_email = models.CharField(max_length=254, blank=True)
    token_id = models.UUIDField(null=True, blank=True)
    token_name = models.CharField(max_length=100, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    resource_type = models.CharField(max_length=32, choices=ResourceType.choices)
    resource_id = models.CharField(max_length=64, blank=True)
    resource_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=32)
    action_label = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16, choices=EventResult.choices)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activity entries"
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="activity_tenant_time"),
            models.Index(fields=["tenant", "resource_type", "resource_id"], name="activity_tenant_resource"),
            models.Index(fields=["created_at"], name="activity_time"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label}: {self.action_label} {self.resource_label}"

    @property
    def actor_label(self) -> str:
        if self.token_name:
            return f"{self.actor_email} (token “{self.token_name}”)"
        return self.actor_email or "Hangar"

    @property
    def resource_label(self) -> str:
        kind = self.get_resource_type_display()
        return f"{kind} {self.resource_name}" if self.resource_name else kind


class UserSession(models.Model):
    """A signed-in browser session of a user: device, address, last seen. Keyed by the session store's key, which
    never leaves the server: pages name a session by its `id`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session_key = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="browser_sessions")
    user_agent = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at", "id"]

    def __str__(self) -> str:
        return f"{self.user} · {self.device}"

    @property
    def device(self) -> str:
        from tenants.devices import describe_user_agent

        return describe_user_agent(self.user_agent)


class KnownDevice(models.Model):
    """A browser a user has logged in from (a long-lived cookie names it): a log-in from any other is e-mailed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="known_devices")
    # sha256 of the cookie's random value: the cookie alone does not reveal which row it is.
    key_hash = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now, editable=False)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "key_hash"], name="knowndevice_unique_user_key")]

    def __str__(self) -> str:
        return f"{self.user} · {self.user_agent[:40]}"

    @staticmethod
    def hash_key(key: str) -> str:
        return _hash_token(key)
