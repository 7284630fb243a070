"""Benchmark data: a catalog, many tenants, and instance rows bulk-inserted in SQL (a fixture, not product code)."""

# write-ok-file: benchmark fixtures fill a fresh database of their own

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.utils import timezone

from compute.models import Flavor, Host, Image
from compute.network.models import Network
from tenants.middleware import SESSION_KEY as TENANT_SESSION_KEY
from tenants.models import Membership, Quota, Tenant
from tenants.roles import Role
from tenants.services import api_token_create


@dataclass
class Member:
    tenant: Tenant
    user: object
    token: str
    session_cookie: str

    def api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    def browser_headers(self) -> dict[str, str]:
        return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={self.session_cookie}"}


def catalog(*, hosts: int = 4, boot_seconds: int = 5) -> tuple[list[Flavor], list[Image], list[Host]]:
    flavors = [
        Flavor.objects.create(name=name, vcpus=vcpus, ram_mib=ram, disk_gib=disk, monthly_price=Decimal(price))
        for name, vcpus, ram, disk, price in (
            ("small", 1, 1024, 10, "4.99"),
            ("medium", 2, 4096, 40, "14.99"),
            ("large", 4, 8192, 80, "29.99"),
        )
    ]
    images = [
        Image.objects.create(name=f"debian-{version}", os="Debian", version=str(version), disk_path=f"/d{version}.img")
        for version in (11, 12, 13)
    ]
    host_rows = [
        Host.objects.create(
            name=f"hv-{number:02d}",
            driver="simulated",
            vcpus=4096,
            ram_mib=64 * 1024 * 1024,
            disk_gib=1024 * 1024,
            boot_seconds=boot_seconds,
            stop_seconds=0,
        )
        for number in range(hosts)
    ]
    return flavors, images, host_rows


def tenants(count: int, *, prefix: str = "bench") -> list[Tenant]:
    rows = Tenant.objects.bulk_create(
        [Tenant(name=f"{prefix}-{number:05d}") for number in range(count)], batch_size=2000
    )
    Quota.objects.bulk_create([Quota(tenant=tenant, **Quota.defaults()) for tenant in rows], batch_size=2000)
    return rows


def large_default_networks(tenants: list[Tenant], *, region) -> None:
    """A /16 default network for each tenant (a launched default network is a /24: 253 machines), so one tenant can
    launch thousands of machines."""
    Network.objects.bulk_create(
        [
            Network(tenant=tenant, region=region, name="default", cidr=f"10.{200 + number}.0.0/16", is_default=True)
            for number, tenant in enumerate(tenants)
        ]
    )


def member(tenant: Tenant, *, email: str, role: str = Role.OWNER) -> Member:
    user = get_user_model().objects.create_user(
        email=email, password="bench-password-123", email_verified_at=timezone.now()
    )
    membership = Membership.objects.create(user=user, tenant=tenant, role=role)
    _, token = api_token_create(membership=membership, name="bench", scope="read_write")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[TENANT_SESSION_KEY] = str(tenant.pk)
    session.create()
    return Member(tenant=tenant, user=user, token=token, session_cookie=session.session_key)


def instances(*, tenant_ids: list, live: int, deleted: int, flavors, images, hosts) -> None:
    """`live` running or stopped machines (and `deleted` deleted ones) for each tenant, created over the past year."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO compute_instance (id, tenant_id, name, flavor_id, image_id, host_id, state, power_state,
                private_ip, ssh_keys, created_by_id, created_at, updated_at, resize_flavor_id, task, task_params,
                task_enqueued_at, task_progress_at, task_deadline, task_requeues, error_reason, deleted_at, user_data,
                region_id, labels, disk_source)
            SELECT gen_random_uuid(), t.id, 'vm-' || g, (%(flavors)s::uuid[])[1 + g %% 3],
                (%(images)s::uuid[])[1 + g %% 3], (%(hosts)s::uuid[])[1 + g %% %(host_count)s],
                CASE WHEN g > %(live)s THEN 'deleted' WHEN g %% 5 = 0 THEN 'stopped' ELSE 'running' END,
                CASE WHEN g > %(live)s THEN 'nostate' WHEN g %% 5 = 0 THEN 'shutoff' ELSE 'running' END,
                CASE WHEN g > %(live)s THEN NULL
                     ELSE ('10.' || (g / 65536) %% 256 || '.' || (g / 256) %% 256 || '.' || g %% 256)::inet END,
                '[]'::jsonb, NULL, now() - (random() * interval '365 days'), now(), NULL, '', '{}'::jsonb,
                NULL, NULL, NULL, 0, '', CASE WHEN g > %(live)s THEN now() END, '', %(region)s, '{}'::jsonb, '{}'::jsonb
            FROM tenants_tenant t CROSS JOIN generate_series(1, %(total)s) g
            WHERE t.id = ANY(%(tenants)s::uuid[])
            """,
            {
                "flavors": [f.pk for f in flavors],
                "images": [i.pk for i in images],
                "hosts": [h.pk for h in hosts],
                "host_count": len(hosts),
                "region": hosts[0].region_id,
                "live": live,
                "total": live + deleted,
                "tenants": list(tenant_ids),
            },
        )
        cursor.execute("ANALYZE")
