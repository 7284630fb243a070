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
def stack(tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        running = Stack(tmp_path_factory.mktemp("cli-stack"))
        try:
            yield running.start()
        finally:
            running.stop()


@pytest.fixture(scope="module")
def token(stack) -> str:
    out = stack.manage(
        "shell",
        "-c",
        "from tenants.models import Membership\n"
        "from tenants.services import api_token_create\n"
        "membership = Membership.objects.get(user__email='demo@hangar.local')\n"
        "print(api_token_create(membership=membership, name='cli', scope='read_write')[1])",
    )
    return out.strip().splitlines()[-1]


@pytest.fixture
def hangar(stack, token, tmp_path):
    """Runs `hangar ARGS…` in a subprocess with HANGAR_URL and HANGAR_TOKEN set, and no config file."""

    def run(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HANGAR_")},
            "HANGAR_URL": stack.url,
            "HANGAR_TOKEN": token,
            "HANGAR_CONFIG": str(tmp_path / "config.toml"),
            "HANGAR_POLL_INTERVAL": "0.3",
            **(env or {}),
        }
        return subprocess.run(
            [sys.executable, "-m", "hangar_cli", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def test_a_machine_from_create_to_delete(hangar, stack):
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
    assert created.returncode == 0, created.stderr + stack.tail_logs()
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


def test_login_then_use_the_profile(hangar, stack, token, tmp_path):
    logged_in = hangar(
        "login", "--url", stack.url, "--token", token, "--profile", "local", env={"HANGAR_URL": "", "HANGAR_TOKEN": ""}
    )
    assert logged_in.returncode == 0, logged_in.stderr
    assert "as owner of Demo Company" in logged_in.stderr
    assert oct((tmp_path / "config.toml").stat().st_mode & 0o777) == "0o600"
    whoami = hangar("whoami", "--json", env={"HANGAR_URL": "", "HANGAR_TOKEN": ""})
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["name"] == "Demo Company"
