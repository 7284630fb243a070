"""The `hangar` command-line client against a live server with a real worker: the client runs as a subprocess and
talks only to the public API over HTTP, as a user's would."""

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_stack(tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        running = Stack(tmp_path_factory.mktemp("cli-stack"))
        try:
            yield running.start()
        finally:
            running.stop()


@pytest.fixture(scope="module")
def token(cli_stack) -> str:
    out = cli_stack.manage(
        "shell",
        "-c",
        "from tenants.models import Membership\n"
        "from tenants.services import api_token_create\n"
        "membership = Membership.objects.get(user__email='demo@hangar.local')\n"
        "print(api_token_create(membership=membership, name='cli', scope='read_write')[1])",
    )
    return out.strip().splitlines()[-1]


@pytest.fixture
def hangar(cli_stack, token, tmp_path):
    """Runs `hangar ARGS…` in a subprocess with HANGAR_URL and HANGAR_TOKEN set, and no config file."""

    def run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        environment = {
            # Not the test runner's terminal width either: piped, tables keep their natural width.
            **{k: v for k, v in os.environ.items() if not k.startswith("HANGAR_") and k != "COLUMNS"},
            "HANGAR_URL": cli_stack.url,
            "HANGAR_TOKEN": token,
            "HANGAR_CONFIG": str(tmp_path / "config.toml"),
            "HANGAR_POLL_INTERVAL": "0.3",
            **(env or {}),
        }
        try:
            return subprocess.run(
                [sys.executable, "-m", "hangar_cli", *args],
                env=environment,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as expired:
            pytest.fail(f"hangar {' '.join(args)} ran over {timeout} s: {expired.stderr}\n{cli_stack.tail_logs(4000)}")

    return run


def test_a_machine_from_create_to_delete(hangar, cli_stack):
    created = hangar(
        "instances",
        "create",
        "cli-web-1",
        "--flavor",
        "c1.micro",
        "--image",
        "Debian 12",
        "--label",
        "team=cli",
        "--wait",
        "--json",
    )
    assert created.returncode == 0, created.stderr + cli_stack.tail_logs()
    machine = json.loads(created.stdout)
    assert machine["state"] == "running" and machine["labels"] == {"team": "cli"}
    assert "cli-web-1: running" in created.stderr

    listed = hangar("instances", "list")
    assert listed.returncode == 0
    assert "cli-web-1" in listed.stdout and "running" in listed.stdout and "c1.micro" in listed.stdout
    by_label = json.loads(hangar("instances", "list", "--label", "team=cli", "--json").stdout)
    assert [item["name"] for item in by_label] == ["cli-web-1"]
    assert json.loads(hangar("instances", "list", "--label", "team=other", "--json").stdout) == []

    stopped = hangar("instances", "stop", "cli-web-1", "--wait", "--json")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(stopped.stdout)["state"] == "stopped"

    started = hangar("instances", "start", "cli-web-1", "--wait", "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["state"] == "running"

    deleted = hangar("instances", "delete", "cli-web-1", "--yes", "--wait", "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["state"] == "deleted"
    assert "cli-web-1" not in hangar("instances", "list").stdout


def test_errors_name_the_field_and_exit_with_their_codes(hangar):
    network = hangar("networks", "create", "cli-public", "--cidr", "8.8.8.0/24")
    assert network.returncode == 1
    assert "not a private range" in network.stderr and "cidr" in network.stderr

    firewall = hangar("firewalls", "create", "cli-fw", "--rule", "in tcp 9000-8000")
    assert firewall.returncode == 1
    assert "rules.0.port_max: The range runs backwards" in firewall.stderr

    missing = hangar("instances", "show", "no-such-machine")
    assert missing.returncode == 4 and "No instance named 'no-such-machine'" in missing.stderr

    bad_token = hangar("instances", "list", env={"HANGAR_TOKEN": "hgr_00000000_wrong"})
    assert bad_token.returncode == 3 and "hangar login" in bad_token.stderr

    nobody = hangar("instances", "list", env={"HANGAR_URL": "http://127.0.0.1:9"})
    assert nobody.returncode == 6 and "Cannot reach" in nobody.stderr


def test_login_then_use_the_profile(hangar, cli_stack, token, tmp_path):
    logged_in = hangar(
        "login",
        "--url",
        cli_stack.url,
        "--token",
        token,
        "--profile",
        "local",
        env={"HANGAR_URL": "", "HANGAR_TOKEN": ""},
    )
    assert logged_in.returncode == 0, logged_in.stderr
    assert "as owner of Demo Company" in logged_in.stderr
    assert oct((tmp_path / "config.toml").stat().st_mode & 0o777) == "0o600"
    whoami = hangar("whoami", "--json", env={"HANGAR_URL": "", "HANGAR_TOKEN": ""})
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["name"] == "Demo Company"


def test_a_volume_created_attached_extended_snapshotted_and_deleted(hangar, cli_stack):
    if cli_stack.get("/api/v1/volumes/").status_code == 404:
        pytest.skip("this build has no volumes API")
    machine = hangar("instances", "create", "cli-db-1", "-f", "c1.micro", "-i", "Debian 12", "--wait")
    assert machine.returncode == 0, machine.stderr + cli_stack.tail_logs()

    created = hangar("volumes", "create", "cli-data", "--size", "10", "--label", "team=cli", "--wait", "--json")
    assert created.returncode == 0, created.stderr + cli_stack.tail_logs()
    assert json.loads(created.stdout)["state"] == "available"
    attached = hangar("volumes", "attach", "cli-data", "cli-db-1", "--wait", "--json")
    assert attached.returncode == 0, attached.stderr
    assert json.loads(attached.stdout)["attachment"]["instance_name"] == "cli-db-1"
    extended = hangar("volumes", "extend", "cli-data", "--size", "20", "--wait", "--json")
    assert extended.returncode == 0, extended.stderr
    assert json.loads(extended.stdout)["size_gib"] == 20
    shrink = hangar("volumes", "extend", "cli-data", "--size", "5")
    assert shrink.returncode == 1 and "size_gib" in shrink.stderr

    snapshot = hangar("snapshots", "create", "cli-nightly", "--volume", "cli-data", "--wait", "--json")
    assert snapshot.returncode == 0, snapshot.stderr
    assert json.loads(snapshot.stdout)["state"] == "available"
    listed = hangar("volumes", "list")
    assert "cli-data" in listed.stdout and "cli-db-1 (vdb)" in listed.stdout

    assert hangar("volumes", "detach", "cli-data", "--wait").returncode == 0
    for kind, name in (("snapshots", "cli-nightly"), ("volumes", "cli-data"), ("instances", "cli-db-1")):
        deleted = hangar(kind, "delete", name, "--yes", "--wait")
        assert deleted.returncode == 0, deleted.stderr
    # The demo organisation keeps its own volumes; none of this test's is left.
    left = json.loads(hangar("volumes", "list", "--json").stdout)
    assert "cli-data" not in {volume["name"] for volume in left}
    assert "cli-nightly" not in {snap["name"] for snap in json.loads(hangar("snapshots", "list", "--json").stdout)}


STACK_V1 = """\
stack: shop
networks:
  back:
    cidr: 10.30.0.0/24
firewalls:
  web:
    rules:
      - {direction: in, protocol: tcp, ports: 22}
      - {direction: out, protocol: any}
machines:
  web:
    flavor: c1.micro
    image: Debian 12
    networks: [back]
    firewalls: [web]
"""
# A bigger flavor and a volume attached to the machine.
STACK_V2 = STACK_V1.replace("c1.micro", "c1.small") + "volumes:\n  web-data:\n    size_gib: 10\n    attach_to: web\n"

WHOLE_MONTH_INVOICE = """
import json
from datetime import datetime, time, timedelta
from django.utils import timezone
from billing.models import Invoice
from billing.pricing import month_start, next_month
from billing.services.metering import invoices_refresh
from tenants.models import Membership
tenant = Membership.objects.get(user__email='demo@hangar.local').tenant
following = next_month(month_start(timezone.now()))
last_second = timezone.make_aware(datetime.combine(next_month(following), time.min)) - timedelta(seconds=1)
invoices_refresh(period_start=following, as_of=last_second, tenant_ids=[tenant.pk])
invoice = Invoice.objects.for_tenant(tenant).get(period_start=following)
lines = {}
for line in invoice.lines.all():
    lines[line.resource_type] = lines.get(line.resource_type, 0) + line.amount_cents
print(json.dumps({"subtotal_cents": invoice.subtotal_cents, "lines": lines}))
"""


VOLUME_GIB_PRICE = """
from django.utils import timezone
from billing.models import ResourceType
from billing.selectors import resource_price_current
print(resource_price_current(resource_type=ResourceType.VOLUME, at=timezone.now()))
"""


def _invoice_of_a_whole_month(cli_stack) -> dict:
    """Next month's invoice as billing computes it when the resources run the whole month (cents)."""
    return json.loads(cli_stack.manage("shell", "-c", WHOLE_MONTH_INVOICE).strip().splitlines()[-1])


def _minus(invoice: dict, baseline: dict) -> dict:
    """What an invoice charges beyond another one, in cents."""
    lines = {kind: cents - baseline["lines"].get(kind, 0) for kind, cents in invoice["lines"].items()}
    return {"subtotal_cents": invoice["subtotal_cents"] - baseline["subtotal_cents"], "lines": lines}


def _cents(amount: str) -> int:
    return round(float(amount) * 100)


def test_a_stack_planned_applied_changed_and_destroyed_with_the_cost_of_each_change(hangar, cli_stack, tmp_path):
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(STACK_V1)
    v2.write_text(STACK_V2)
    prices = {item["name"]: item["monthly_price"] for item in json.loads(hangar("flavors", "--json").stdout)}
    volume_gib_price = float(cli_stack.manage("shell", "-c", VOLUME_GIB_PRICE).strip().splitlines()[-1])

    first = hangar("plan", "-f", str(v1), "--json")
    assert first.returncode == 0, first.stderr
    plan = json.loads(first.stdout)
    changes = {(c["action"], c["type"], c["name"]) for c in plan["changes"]}
    assert changes == {("create", "network", "back"), ("create", "firewall", "web"), ("create", "machine", "web")}
    assert (plan["cost"]["monthly_before"], plan["cost"]["monthly_after"]) == ("0.00", prices["c1.micro"])

    applied = hangar("apply", "-f", str(v1), "--yes")
    assert applied.returncode == 0, applied.stderr + cli_stack.tail_logs()
    assert "3 to create" in applied.stdout and "+4.50 EUR a month" in applied.stdout
    assert "✓ create machine web" in applied.stderr and "apply shop: succeeded (3 of 3 steps)" in applied.stderr

    again = hangar("plan", "-f", str(v1))
    assert again.returncode == 0
    assert "No changes" in again.stdout and "(+0.00 EUR a month)" in again.stdout
    # The demo tenant's own resources are on the same invoice: the plan's difference is compared with the
    # invoice's difference between the two versions of the stack.
    invoice_v1 = _invoice_of_a_whole_month(cli_stack)

    changed = hangar("plan", "-f", str(v2), "--json")
    assert changed.returncode == 0, changed.stderr
    plan = json.loads(changed.stdout)
    assert [(c["action"], c["type"], c["name"], c["fields"]) for c in plan["changes"]] == [
        ("update", "machine", "web", {"flavor": ["c1.micro", "c1.small"]}),
        ("create", "volume", "web-data", {"size_gib": [None, 10], "attached_to": [None, "web"]}),
    ]
    cost = plan["cost"]
    share = {change["name"]: _cents(change["monthly_difference"]) for change in plan["changes"]}
    assert share["web"] == _cents(prices["c1.small"]) - _cents(prices["c1.micro"])
    assert _cents(cost["difference"]) == _cents(cost["monthly_after"]) - _cents(cost["monthly_before"])
    shown = hangar("plan", "-f", str(v2))
    assert "flavor: c1.micro → c1.small" in shown.stdout
    assert f"({'+' + cost['difference']} EUR a month)" in shown.stdout

    applied = hangar("apply", "-f", str(v2), "--yes")
    assert applied.returncode == 0, applied.stderr + cli_stack.tail_logs()
    assert "apply shop: succeeded (2 of 2 steps)" in applied.stderr
    assert "No changes" in hangar("plan", "-f", str(v2)).stdout
    # Billing's own invoice for a whole month of the changed stack: the plan's figures, line by line.
    change = _minus(_invoice_of_a_whole_month(cli_stack), invoice_v1)
    assert change["subtotal_cents"] == _cents(cost["difference"])
    assert change["lines"]["instance"] == share["web"]
    assert change["lines"]["volume"] == share["web-data"] == round(10 * 100 * volume_gib_price)
    assert _cents(cost["difference"]) == share["web"] + share["web-data"]
    listed = json.loads(hangar("stacks", "list", "--json").stdout)
    assert [(s["name"], s["resources"], s["monthly_cost"]) for s in listed] == [("shop", 4, cost["monthly_after"])]
    exported = hangar("export", "shop")
    assert exported.returncode == 0 and "flavor: c1.small" in exported.stdout and "attach_to: web" in exported.stdout

    destroyed = hangar("destroy", "shop", "--yes")
    assert destroyed.returncode == 0, destroyed.stderr + cli_stack.tail_logs()
    assert "destroy shop: succeeded (5 of 5 steps)" in destroyed.stderr  # the volume detached, then deleted
    assert json.loads(hangar("stacks", "list", "--json").stdout) == []
    for kind in ("instances", "networks", "firewalls", "addresses"):
        left = json.loads(hangar(kind, "list", "--label", "hangar.stack=shop", "--json").stdout)
        assert left == [], (kind, left)
    volumes = json.loads(hangar("volumes", "list", "--json").stdout)
    assert "web-data" not in [volume["name"] for volume in volumes]


def test_bad_stack_documents_are_refused_naming_the_field_and_line(hangar, tmp_path):
    cycle = (
        "stack: cyc\nmachines:\n  a: {flavor: c1.micro, image: Debian 12, depends_on: [b]}\n"
        "  b: {flavor: c1.micro, image: Debian 12, depends_on: [a]}\n"
    )
    documents = {
        "unknown key": (STACK_V1 + "    colour: blue\n", "machines.web.colour (line 16): Unknown key colour."),
        "missing name": (STACK_V1.replace("[web]", "[missing]"), "machines.web.firewalls"),
        "cycle": (cycle, "machines.b.depends_on (line 4): Dependency cycle: a → b → a."),
        "over quota": (STACK_V1.replace("c1.micro", "c1.micro\n    count: 50"), "machines.web.count (line 13): 50"),
    }
    for what, (text, expected) in documents.items():
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        result = hangar("apply", "-f", str(path), "--yes")
        assert result.returncode == 1, (what, result.stderr)
        assert expected in result.stderr, (what, result.stderr)
        if what == "missing name":
            assert "missing" in result.stderr
    assert json.loads(hangar("stacks", "list", "--json").stdout) == []
