"""Backups under real concurrency (PostgreSQL): beats racing each other make one backup per machine and day, and two
"back up now" clicks make one."""

import pytest

from compute.storage.backup_models import Backup, BackupPolicy
from compute.storage.services import backups
from tests.concurrency import race
from tests.factories.compute import HostFactory, InstanceFactory
from tests.factories.tenants import TenantFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def machines():
    tenant, host = TenantFactory(), HostFactory(name="pg-host", disk_gib=100000)
    made = [InstanceFactory(tenant=tenant, host=host, state="stopped") for _ in range(5)]
    for machine in made:
        backups.backups_enable(instance=machine, user=None, hour=3)
    return made


def test_racing_beats_start_each_due_backup_once(machines):
    due = max(BackupPolicy.objects.values_list("next_run_at", flat=True))
    results = race(6, lambda n: backups.backups_run_due(now=due))
    assert results == ["ok"] * 6
    assert Backup.objects.count() == len(machines)
    assert sorted(Backup.objects.values_list("instance_id", flat=True)) == sorted(m.pk for m in machines)


def test_two_back_up_now_clicks_make_one_backup(machines):
    results = race(2, lambda n: backups.backup_create(instance=machines[0], user=None))
    assert sorted(results) == ["backup_in_progress", "ok"]
    assert Backup.objects.filter(instance=machines[0]).count() == 1
