"""The networking pages in Chromium: the launch form's public address in the estimate, the instance page's SSH line
and its copy button, the firewall picker dialog, and the Networking section (screenshots for review).

Celery runs eagerly inside the live server, so a launch is built as soon as its transaction commits.
"""

import shutil
from pathlib import Path

import pytest

from compute.drivers.base import InterfaceCounters
from compute.network.models import Network, PublicIP, PublicIPPool
from compute.network.rulesets import RuleInput
from compute.network.services import firewall_create, network_create, network_defaults_ensure, public_ip_allocate
from compute.network.services.traffic import traffic_record
from tenants.roles import Role
from tests.browser import CHROMIUM, screenshot
from tests.factories import MembershipFactory, UserFactory
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, SSHKeyFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()), reason=f"no Chromium at {CHROMIUM}"),
]

PASSWORD = "correct-horse-battery"


@pytest.fixture
def world(db):
    HostFactory(name="hv-browser", boot_seconds=0, stop_seconds=0)
    PublicIPPool.objects.create(name="doc", cidr="203.0.113.0/24", excluded="203.0.113.1")
    user = UserFactory(email="dana@example.com")
    membership = MembershipFactory(user=user, role=Role.OWNER)
    network_defaults_ensure(tenant=membership.tenant)  # as tenant_create does
    return {
        "membership": membership,
        "flavor": FlavorFactory(name="c2.medium", vcpus=2, ram_mib=4096, disk_gib=80, monthly_price="14.90"),
        "image": ImageFactory(name="Debian 12", os="Debian", version="12", min_disk_gib=2),
        "key": SSHKeyFactory(tenant=membership.tenant, name="laptop"),
    }


def _log_in(page, world):
    page.goto("/accounts/login/")
    page.fill("#id_username", world["membership"].user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_launch_with_a_public_address_then_log_in_line_and_firewalls(new_page, world):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _log_in(page, world)
    tenant = world["membership"].tenant
    user = world["membership"].user
    network_create(tenant=tenant, user=user, name="backend", cidr="10.20.0.0/24")
    firewall_create(
        tenant=tenant,
        user=user,
        name="web",
        description="HTTPS from anywhere",
        rules=[RuleInput("in", "tcp", 443, 443, "0.0.0.0/0", "HTTPS"), RuleInput("out", "any")],
    )

    page.goto("/instances/launch/")
    page.click("label.choice:has-text('c2.medium')")
    page.click("label.choice:has-text('Debian 12')")
    assert page.locator("label.choice:has-text('laptop') input").is_checked()  # the only key: ticked already
    ipv4_line = page.locator("[data-cost-ipv4]")
    assert ipv4_line.is_hidden()
    page.click("label.choice:has-text('Assign a new public IPv4 address')")
    assert ipv4_line.is_visible() and "1.00 EUR" in ipv4_line.inner_text()
    page.fill("#id_name", "web-1")
    page.click("summary:has-text('Advanced options')")
    page.fill("#id_user_data", "#cloud-config\nwrite_files:\n  - path: /root/hello\n    content: hello\n")
    screenshot(page, "network-launch")
    page.click("button[form=launch-form]")
    page.wait_for_url("**/instances/*/")

    public_ip = PublicIP.objects.get(tenant=tenant)
    line = page.locator("#ssh-command")
    assert line.inner_text() == f"ssh root@{public_ip.address}"
    page.click("button[data-copy='#ssh-command']")
    assert page.evaluate("navigator.clipboard.readText()") == f"ssh root@{public_ip.address}"
    instance = public_ip.instance
    traffic_record(instance=instance, counters=InterfaceCounters(rx_bytes=48_200_000, tx_bytes=2_097_152))
    page.reload()
    assert "Sent\n2.0\xa0MB" in page.locator("#networking").inner_text()
    screenshot(page, "network-instance")

    page.click("button:has-text('Change firewalls')")
    dialog = page.locator("#firewalls-dialog")
    assert "TCP 443 from anywhere (HTTPS)" in dialog.inner_text()
    screenshot(page, "network-instance-firewalls")
    dialog.locator("label.choice", has_text="HTTPS").click()
    dialog.locator("button:has-text('Apply')").click()
    page.wait_for_url("**#networking")
    assert "is now protected by default, web" in page.inner_text("body")
    assert not page.console_errors


def test_the_networking_section(new_page, world):
    page = new_page()
    _log_in(page, world)
    tenant = world["membership"].tenant
    user = world["membership"].user
    network_create(tenant=tenant, user=user, name="backend", cidr="10.20.0.0/24")
    firewall_create(tenant=tenant, user=user, name="web", rules=[RuleInput("in", "tcp", 443, 443)])
    public_ip_allocate(tenant=tenant, user=user)

    page.goto("/networks/")
    assert "backend" in page.inner_text("table")
    page.fill("#id_name", "lab")
    page.fill("#id_cidr", "10.20.0.0/16")
    page.click("button:has-text('Create network')")
    assert "10.20.0.0/16 overlaps your network backend (10.20.0.0/24)" in page.inner_text("body")
    screenshot(page, "network-networks")
    default = Network.objects.get(tenant=tenant, is_default=True)
    page.goto(f"/networks/{default.pk}/")
    screenshot(page, "network-network-detail")

    page.goto("/ips/")
    assert "203.0.113." in page.inner_text("table")
    screenshot(page, "network-ips")
    page.click("button:has-text('Release')")
    assert page.locator("dialog[open]").is_visible()
    screenshot(page, "network-ip-release")
    page.click("dialog[open] button:has-text('Keep it')")

    page.goto("/firewalls/")
    screenshot(page, "network-firewalls")
    page.click("text=web")
    page.select_option("#id_protocol", "udp")
    page.fill("#id_ports", "9000-8000")
    page.click("button:has-text('Add rule')")
    assert "The range runs backwards: 9000 to 8000" in page.inner_text("body")
    screenshot(page, "network-firewall-detail")
    # The two refused forms answered 400 (the browser logs that); nothing else went wrong.
    assert [error for error in page.console_errors if "status of 400" not in error] == []


def test_the_launch_form_offers_the_networks_of_the_region_chosen(new_page, world):
    from tests.factories.compute import RegionFactory

    helsinki = RegionFactory(name="hel1", label="Helsinki")
    HostFactory(name="hv-hel", region=helsinki, boot_seconds=0, stop_seconds=0)
    tenant, user = world["membership"].tenant, world["membership"].user
    network_create(tenant=tenant, user=user, name="hel-backend", cidr="10.40.0.0/24", region=helsinki)
    page = new_page()
    _log_in(page, world)
    page.goto("/instances/launch/")
    default = page.locator("label.choice[data-network-region]", has_text="default")
    helsinki_network = page.locator("label.choice", has_text="hel-backend")
    assert default.is_visible() and default.locator("input").is_checked() and helsinki_network.is_hidden()

    page.click("label.choice:has-text('Helsinki')")
    assert default.is_hidden() and not default.locator("input").is_checked()
    assert helsinki_network.is_visible()
    page.click("label.choice:has-text('hel-backend')")
    assert helsinki_network.locator("input").is_checked()
    screenshot(page, "network-launch-regions")
    assert not page.console_errors
