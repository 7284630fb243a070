"""The compute pages in Chromium: what only a browser shows (the live estimate, htmx key adding and polling, dialogs).

Celery runs eagerly inside the live server, so a launch is built as soon as its transaction commits.
"""

import shutil
from pathlib import Path

import pytest

from compute.models import Instance, InstanceState
from tenants.models import Quota
from tenants.roles import Role
from tests.browser import CHROMIUM, screenshot
from tests.factories import MembershipFactory, UserFactory
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory, new_public_key

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()), reason=f"no Chromium at {CHROMIUM}"),
]

PASSWORD = "correct-horse-battery"


@pytest.fixture
def catalog(db):
    HostFactory(name="hv-browser", boot_seconds=0, stop_seconds=0)
    return {
        "small": FlavorFactory(name="b1.small", vcpus=1, ram_mib=2048, disk_gib=20, monthly_price="6.72"),
        "large": FlavorFactory(name="b8.large", vcpus=8, ram_mib=16384, disk_gib=160, monthly_price="67.20"),
        "image": ImageFactory(name="Debian 12", os="Debian", version="12", min_disk_gib=2),
        "tiny": FlavorFactory(name="b0.tiny", vcpus=1, ram_mib=512, disk_gib=1, monthly_price="2.00"),
    }


def _log_in(page, role=Role.MEMBER):
    user = UserFactory(email=f"{role}@example.com")
    membership = MembershipFactory(user=user, role=role)
    page.goto("/accounts/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    return membership


def test_launch_with_live_estimate_and_a_key_added_inline(new_page, catalog):
    page = new_page()
    membership = _log_in(page)
    Quota.objects.filter(tenant=membership.tenant).update(vcpus=4)

    page.goto("/instances/launch/")
    # A first machine: the smallest size an image fits (b0.tiny fits none), that image and a name are chosen.
    assert page.get_by_role("heading", name="Launch your first machine").is_visible()
    assert "6.72 EUR" in page.locator("[data-cost-monthly]").inner_text()
    assert page.locator("label.choice:has-text('Debian 12') input[name=image]").is_checked()
    assert page.input_value("#id_name") == "web-1"
    # Beyond the quota headroom: shown, disabled, with the reason.
    large = page.locator("label.choice", has_text="b8.large")
    assert "Needs 8 vCPUs; 4 left in your quota." in large.inner_text()
    assert large.locator("input").is_disabled()

    page.click("label.choice:has-text('b1.small')")
    assert "6.72 EUR" in page.locator("[data-cost-monthly]").inner_text()
    assert "0.0100 EUR" in page.locator("[data-cost-hourly]").inner_text()

    # Debian needs 2 GiB of disk: the 1 GiB size is greyed out while it is the image chosen.
    tiny = page.locator("label.choice", has_text="b0.tiny")
    assert tiny.locator("input").is_disabled() and not tiny.locator("input").is_checked()
    assert "Too small for Debian 12." in tiny.inner_text()
    page.fill("#id_newkey-name", "laptop")
    page.fill("#id_newkey-public_key", "not a key")
    page.click("[data-key-add]")
    page.wait_for_selector("#key-picker .errorlist")
    page.fill("#id_newkey-public_key", new_public_key())
    page.click("[data-key-add]")
    page.wait_for_selector("text=The key laptop was added and selected.")
    assert page.locator("#key-picker input[name=keys]").is_checked()
    assert "6.72 EUR" in page.locator("[data-cost-monthly]").inner_text()  # the swap kept the chosen size
    screenshot(page, "compute-launch")

    page.fill("#id_name", "web-1")
    page.click("button[form=launch-form]")
    page.wait_for_selector(".title-row .badge.ok")
    assert page.locator("h1").inner_text() == "web-1"
    instance = Instance.objects.get(tenant=membership.tenant, name="web-1")
    assert instance.state == InstanceState.RUNNING
    assert [key["name"] for key in instance.ssh_keys] == ["laptop"]
    assert page.console_errors == []


def test_list_polls_while_building_and_stops_when_settled(new_page, catalog):
    page = new_page()
    membership = _log_in(page)
    instance = InstanceFactory(tenant=membership.tenant, name="busy-1", state=InstanceState.BUILDING)
    page.goto("/instances/")
    assert page.locator("#instance-table").get_attribute("hx-trigger") == "every 2s"
    assert "Building" in page.locator(f"#instance-{instance.pk} .badge").inner_text()

    Instance.objects.filter(pk=instance.pk).update(state=InstanceState.RUNNING)
    page.wait_for_selector(f"#instance-{instance.pk} .badge.ok")
    assert page.locator("#instance-table").get_attribute("hx-trigger") == "every 15s"  # only the cheap check
    assert page.console_errors == []


def test_delete_dialog_needs_the_typed_name(new_page, catalog):
    page = new_page()
    membership = _log_in(page)
    instance = InstanceFactory(tenant=membership.tenant, name="web-1", state=InstanceState.ERROR)
    page.goto(f"/instances/{instance.pk}/")
    page.click("#instance-live button:has-text('Delete')")
    dialog = page.locator("#delete-dialog")
    submit = dialog.locator("button[type=submit]")
    assert dialog.is_visible() and submit.is_disabled()
    dialog.locator("input[name=confirm_name]").fill("web-")
    assert submit.is_disabled()
    dialog.locator("input[name=confirm_name]").fill("web-1")
    assert submit.is_enabled()
    screenshot(page, "compute-delete-dialog")
    submit.click()
    page.wait_for_selector("text=web-1 is being deleted")
    instance.refresh_from_db()
    assert instance.state in (InstanceState.DELETING, InstanceState.DELETED)


def test_viewer_sees_no_buttons(new_page, catalog):
    page = new_page()
    membership = _log_in(page, role=Role.VIEWER)
    instance = InstanceFactory(tenant=membership.tenant, name="web-1", state=InstanceState.RUNNING)
    page.goto("/instances/")
    assert page.locator("text=web-1").count() == 1
    assert page.locator("main button, main .btn").filter(has_text="Stop").count() == 0
    assert page.get_by_role("link", name="Launch instance").count() == 0
    page.goto(f"/instances/{instance.pk}/")
    assert page.locator("#instance-live .row-actions").count() == 0
    assert page.locator("dialog").count() == 0


def test_rename_error_reopens_the_dialog(new_page, catalog):
    page = new_page()
    membership = _log_in(page)
    instance = InstanceFactory(tenant=membership.tenant, name="web-1", state=InstanceState.STOPPED)
    page.goto(f"/instances/{instance.pk}/")
    page.click("#instance-live button:has-text('Rename')")
    dialog = page.locator("#rename-dialog")
    dialog.locator("input[name=name]").fill("bad_name")
    # The browser's own pattern check would stop this; submit it anyway to see the server's answer.
    dialog.locator("form").evaluate("form => form.noValidate = true")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("#rename-dialog .errorlist")
    assert page.locator("#rename-dialog").is_visible()
    assert page.locator("#rename-dialog").evaluate("dialog => dialog.matches(':modal')")
    dialog.locator("input[name=name]").fill("web-2")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("text=web-1 is now called web-2.")
    instance.refresh_from_db()
    assert instance.name == "web-2"
