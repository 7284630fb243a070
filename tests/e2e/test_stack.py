"""The whole stack as `make run` starts it: web, a separate Celery worker and beat, on their own database (the
`stack` fixture, tests/e2e/conftest.py). Driving a machine from the dashboard on it: test_dashboard_flows.py."""

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_healthz_reports_database_broker_and_a_running_worker(stack):
    # Beat sends the heartbeat task on start; only a worker consuming the broker can run it.
    stack.wait_for(lambda: stack.get("/healthz").json()["checks"]["worker"]["ok"], what="the worker heartbeat")
    body = stack.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_the_log_in_page_is_served(stack):
    response = stack.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in" in response.body


def test_beat_sends_the_schedule_from_the_database(stack):
    """Beat keeps its schedule in the database (operators edit it in the admin) and sends what is due."""
    names = stack.manage(
        "shell",
        "-c",
        "from django_celery_beat.models import PeriodicTask as P; print(list(P.objects.values_list('name')))",
    )
    assert "worker-heartbeat" in names and "compute-reconcile" in names

    def last_heartbeat() -> str | None:
        return stack.get("/healthz").json()["checks"]["worker"]["last_seen"]

    # The worker announces itself once on start; beat sends one on start and every 2 s here. So of three heartbeats in
    # a row, at least two came from beat. (/healthz tells when the last one ran: the worker logs them at DEBUG.)
    stack.wait_for(lambda: last_heartbeat() is not None, what="a first heartbeat")
    for _ in range(2):
        seen = last_heartbeat()
        stack.wait_for(lambda seen=seen: last_heartbeat() != seen, what="a heartbeat sent by beat")


LAUNCH_AND_ENABLE_BACKUPS = """
from compute.models import Flavor, Image
from compute.services import instance_launch
from tenants.models import Membership
m = Membership.objects.get(user__email='demo@hangar.local')
flavor = Flavor.objects.filter(active=True).order_by('vcpus', 'ram_mib').first()
image = Image.objects.public().filter(active=True).order_by('name').first()
print(instance_launch(tenant=m.tenant, user=m.user, name='e2e-backed-up', flavor=flavor, image=image).pk)
"""


def test_beat_makes_the_backup_that_falls_due_on_the_worker(stack):
    """A machine with backups enabled whose time has come: beat starts its backup, the worker makes the copy, the
    schedule moves on to the next 03:xx."""
    instance_id = stack.manage("shell", "-c", LAUNCH_AND_ENABLE_BACKUPS).strip().splitlines()[-1]
    state = f"from compute.models import Instance; print(Instance.objects.get(pk='{instance_id}').state)"
    stack.wait_for(lambda: stack.manage("shell", "-c", state).strip().endswith("running"), what="the machine built")
    # Backups on, and the day's backup due now (as if its hour had just come).
    stack.manage(
        "shell",
        "-c",
        "from django.utils import timezone; from compute.models import Instance;"
        "from compute.storage.services.backups import backups_enable;"
        f"i = Instance.objects.get(pk='{instance_id}'); p = backups_enable(instance=i, user=None, hour=3);"
        "type(p).objects.filter(pk=p.pk).update(next_run_at=timezone.now())",
    )
    made = (
        "from compute.storage.backup_models import Backup;"
        f"print(list(Backup.objects.filter(instance_id='{instance_id}').values_list('state', 'kind')))"
    )
    stack.wait_for(
        lambda: "('available', 'scheduled')" in stack.manage("shell", "-c", made), what="the backup beat started"
    )
    schedule = (
        "from django.utils import timezone; from compute.storage.backup_models import BackupPolicy;"
        f"p = BackupPolicy.objects.get(instance_id='{instance_id}');"
        "print(p.next_run_at > timezone.now() and p.next_run_at.hour == 3, p.last_run_at is not None)"
    )
    assert stack.manage("shell", "-c", schedule).strip().endswith("True True")
    assert stack.manage("shell", "-c", made).count("available") == 1  # once, not once per beat
