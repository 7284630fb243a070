"""What the fault scenarios share: one stack on the suite's own servers, and ways to set it up and look inside.

Set-up goes through Hangar's own services in a `manage.py shell` of the stack (as an operator would script it);
reads go straight to the stack's database with SQL, so that a check never depends on the code under test.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import psycopg

from tests.e2e.stack import Response, Stack
from tests.fault.servers import PostgresCluster, RedisServer

# The stack's settings: the reconciler runs every 2 s and calls silent work lost after 8 s (workers report progress
# every 5 s); invoices of a month are finalized as soon as it ends; rate limits stay out of the load's way.
STACK_ENV = {
    "COMPUTE_RECONCILE_SECONDS": "2",
    "COMPUTE_TASK_GRACE_SECONDS": "8",
    "BILLING_FINALIZE_GRACE_HOURS": "0",
    "API_RATE_LIMIT_PER_HOUR": "1000000",
    "API_RATE_LIMIT_BURST_PER_MINUTE": "1000000",
    "API_RATE_LIMIT_WRITES_PER_HOUR": "1000000",
    "API_RATE_LIMIT_WRITES_BURST_PER_MINUTE": "1000000",
}
DATABASE = "hangar"


@dataclass
class Tenant:
    """An organisation of the stack, with an owner and a read-write API token."""

    id: str
    token: str
    flavor: str  # a one-vCPU flavor
    image: str
    email: str
    password: str = "not-used-1234"


class Fault:
    """The stack and its servers, with helpers for the scenarios."""

    def __init__(self, stack: Stack, postgres: PostgresCluster, redis: RedisServer):
        self.stack = stack
        self.postgres = postgres
        self.redis = redis

    # --- reading and writing -----------------------------------------------------------------------------------

    def sql(self, query: str, params: tuple | list = ()) -> list[tuple]:
        with psycopg.connect(self.postgres.url(DATABASE), autocommit=True, connect_timeout=5) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description is not None else []

    def shell(self, code: str):
        """Runs Python in a `manage.py shell` of the stack; returns what the code put in `result` (JSON)."""
        script = f"import json\nresult = None\n{code}\nprint('RESULT ' + json.dumps(result, default=str))"
        output = self.stack.manage("shell", "-c", script)
        return json.loads(output.rsplit("RESULT ", 1)[1])

    def api(self, method: str, path: str, tenant: Tenant, body=None, timeout: float = 10) -> Response:
        headers = {"Authorization": f"Bearer {tenant.token}"}
        return self.stack.request(method, f"/api/v1/{path}", body, headers=headers, timeout=timeout)

    # --- set-up ------------------------------------------------------------------------------------------------

    def new_tenant(self, *, instances_quota: int = 100) -> Tenant:
        name = f"fault-{uuid.uuid4().hex[:8]}"
        password = Tenant.password
        values = self.shell(f"""
from compute.models import Flavor, Image
from tenants.models import Membership, Quota
from tenants.services import api_token_create, user_mark_email_verified, user_sign_up
user = user_sign_up(email="{name}@example.com", password="{password}", full_name="{name}", organisation="{name}")
user_mark_email_verified(user=user)
membership = Membership.objects.get(user=user)
Quota.objects.filter(tenant=membership.tenant).update(instances={instances_quota}, vcpus=1000, ram_mib=10**7)
token = api_token_create(membership=membership, name="fault", scope="read_write")[1]
result = [str(membership.tenant_id), token, str(Flavor.objects.get(name="c1.micro").pk),
          str(Image.objects.get(name="Debian 12").pk)]
""")
        return Tenant(*values, email=f"{name}@example.com")

    def only_host(self, *, vcpus: int, boot_seconds: int = 0, stop_seconds: int = 0) -> str:
        """A fresh simulated host with room for `vcpus` one-vCPU machines; every other host is disabled."""
        name = f"fault-{uuid.uuid4().hex[:8]}"
        return self.shell(f"""
from decimal import Decimal
from compute.models import Host
Host.objects.update(enabled=False)
host = Host.objects.create(name="{name}", driver="simulated", vcpus={vcpus}, ram_mib=10**6, disk_gib=10**5,
    cpu_allocation_ratio=Decimal(1), boot_seconds={boot_seconds}, stop_seconds={stop_seconds})
result = str(host.pk)
""")

    def launch(self, tenant: Tenant, name: str, timeout: float = 10) -> Response:
        body = {"name": name, "flavor": tenant.flavor, "image": tenant.image}
        return self.api("POST", "instances/", tenant, body, timeout=timeout)

    # --- looking inside ----------------------------------------------------------------------------------------

    def states(self, ids) -> dict[str, str]:
        ids = [str(i) for i in ids]
        rows = self.sql("SELECT id::text, state FROM compute_instance WHERE id = ANY(%s::uuid[])", [ids])
        return dict(rows)

    def wait_for_states(self, expected: dict[str, str], *, timeout: float = 60) -> None:
        """Waits until every instance is in its expected state; fails naming the ones that are not."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.states(expected)
            wrong = {pk: states.get(pk) for pk, state in expected.items() if states.get(pk) != state}
            if not wrong:
                return
            if time.monotonic() > deadline:
                logs = self.stack.tail_logs(6000)
                raise AssertionError(f"after {timeout:.0f} s, not in the expected state: {wrong}\n{logs}")
            time.sleep(0.5)

    def log_size(self, name: str) -> int:
        return self.stack.logs[name].stat().st_size

    def log_since(self, name: str, offset: int) -> str:
        with self.stack.logs[name].open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


def wait_until(predicate, *, what: str, timeout: float = 60, interval: float = 0.25):
    """Polls `predicate` until it returns something true (which is returned); a bound, not a timed assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def assert_error_shape(response: Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.body[:300])
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if code is not None:
        assert error["code"] == code, error
    return error
