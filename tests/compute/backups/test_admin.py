"""Operators' pages for backups, schedules and private images: lists render, actions go through the services."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from compute.storage.backup_models import Backup
from compute.storage.services import backups as services
from tests.conftest import login_client
from tests.factories.backups import BackupFactory, BackupPolicyFactory, PrivateImageFactory
from tests.factories.tenants import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(db):
    return login_client(UserFactory(email="operator@example.com", is_staff=True, is_superuser=True))


@pytest.mark.parametrize("model", ["backup", "backuppolicy", "privateimage"])
def test_lists_and_detail_pages_render(operator_client, tenant, model, django_assert_max_num_queries):
    objects = {
        "backup": BackupFactory(tenant=tenant),
        "backuppolicy": BackupPolicyFactory(tenant=tenant),
        "privateimage": PrivateImageFactory(tenant=tenant),
    }
    with django_assert_max_num_queries(20):
        response = operator_client.get(reverse(f"admin:storage_{model}_changelist"))
    assert response.status_code == 200
    assert operator_client.get(reverse(f"admin:storage_{model}_change", args=[objects[model].pk])).status_code == 200


def test_private_images_are_not_in_the_catalogs_list(operator_client, tenant, image):
    private = PrivateImageFactory(tenant=tenant, name="theirs")
    catalog = operator_client.get(reverse("admin:compute_image_changelist")).content.decode()
    assert image.name in catalog and private.name not in catalog


def test_operators_delete_backups_through_the_service_after_confirming(operator_client, running, member, committed):
    services.backups_enable(instance=running, user=member, hour=1)
    with committed():
        backup = services.backup_create(instance=running, user=member)
    url = reverse("admin:storage_backup_changelist")
    data = {"action": "delete_backups", ACTION_CHECKBOX_NAME: [str(backup.pk)]}
    confirm = operator_client.post(url, data)
    assert confirm.status_code == 200 and b"copy of the disk is destroyed" in confirm.content
    with committed():
        operator_client.post(url, {**data, "confirmed": "1", "note": "cleanup"})
    assert Backup.objects.get(pk=backup.pk).state == "deleted"
