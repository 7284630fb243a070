"""The Storage pages in Chromium: create a volume with its price shown, attach it through the dialog, see it among
the machine's disks, and delete it with its name typed (screenshots for review).

Celery runs eagerly inside the live server, so work is done as soon as its transaction commits.
"""

import shutil
from pathlib import Path

import pytest

from compute.services import instance_launch
from compute.storage.models import Volume
from tenants.roles import Role
from tests.browser import CHROMIUM, screenshot
from tests.factories import MembershipFactory, UserFactory
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()), reason=f"no Chromium at {CHROMIUM}"),
]

PASSWORD = "correct-horse-battery"


def test_create_attach_see_among_the_disks_detach_and_delete(new_page):
    HostFactory(name="hv-browser", boot_seconds=0, stop_seconds=0)
    membership = MembershipFactory(user=UserFactory(email="dana@example.com"), role=Role.OWNER)
    machine = instance_launch(
        tenant=membership.tenant,
        user=membership.user,
        name="web-1",
        flavor=FlavorFactory(name="c2.medium"),
        image=ImageFactory(name="Debian 12"),
    )
    page = new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", "dana@example.com")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    page.click("nav >> text=Volumes")
    assert "per GiB a month" in page.inner_text("#volume-price")
    page.fill("#id_name", "db-data")
    page.fill("#id_size_gib", "50")
    page.click("button:has-text('Create volume')")
    page.wait_for_selector("#volume-table >> text=Available")
    screenshot(page, "storage-volumes")

    page.click("#volume-table button:has-text('Attach')")
    page.click("dialog[open] button:has-text('Attach')")
    page.wait_for_selector("#volume-table >> text=In use")
    volume = Volume.objects.get(name="db-data")
    assert volume.instance_id == machine.pk and volume.device == "vdb"

    page.click("#volume-table >> text=web-1")
    page.wait_for_selector("#disks >> text=db-data")
    assert "vdb" in page.inner_text("#disks")
    screenshot(page, "storage-instance-disks")
    page.click("#disks button:has-text('Detach')")
    page.click("dialog[open] [data-confirm-accept]")  # the page's own confirmation, never the browser's
    page.wait_for_selector("text=is being detached")
    volume.refresh_from_db()
    assert volume.state == "available"

    page.goto("/storage/volumes/")
    page.click("#volume-table button:has-text('Delete')")
    dialog = page.locator("dialog[open]")
    assert dialog.locator("button:has-text('Delete for good')").is_disabled()
    dialog.locator("input[type=text]").fill("db-data")
    dialog.locator("button:has-text('Delete for good')").click()
    page.wait_for_selector("text=billing for it has stopped")
    volume.refresh_from_db()
    assert volume.state == "deleted"
