"""The operators' pages in Chromium at 1366 and 1920 px: the overview, a host and an organisation break no rule of
the strict Content-Security-Policy (no inline style or script) and nothing runs off the side. Screenshots land in
HANGAR_SCREENSHOTS (var/screenshots by default)."""

import shutil
from pathlib import Path

import pytest

from compute.services import instance_mark_error
from tenants.services import tenant_hold
from tests.browser import CHROMIUM, screenshot
from tests.factories import MembershipFactory, UserFactory
from tests.factories.compute import FlavorFactory, HostFactory, InstanceFactory, RegionFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()), reason=f"no Chromium at {CHROMIUM}"),
]

CSP_REPORTER = (
    "document.addEventListener('securitypolicyviolation', e => "
    "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sample))"
)


@pytest.fixture
def estate(db):
    operator = UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)
    north = RegionFactory(name="hel1", label="Helsinki")
    hosts = [HostFactory(name="fsn-a"), HostFactory(name="fsn-b"), HostFactory(name="hel-a", region=north)]
    flavor = FlavorFactory(name="c4.large", vcpus=4, ram_mib=8192, disk_gib=160)
    membership = MembershipFactory()
    tenant = membership.tenant
    for number, host in enumerate(hosts * 3):
        InstanceFactory(tenant=tenant, host=host, region=host.region, flavor=flavor, name=f"web-{number}")
    broken = InstanceFactory(tenant=tenant, host=hosts[0], flavor=flavor, name="db-1")
    instance_mark_error(instance=broken, user=operator, reason="The disk could not be read (I/O error).")
    tenant_hold(tenant=MembershipFactory().tenant, actor=operator, note="Payment overdue")
    return {"operator": operator, "host": hosts[0], "tenant": tenant}


@pytest.mark.parametrize("width", [1366, 1920])
def test_overview_host_and_organisation_pages_fit_and_keep_the_csp(new_page, estate, width):
    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.context.add_init_script(CSP_REPORTER)
    page.goto("/accounts/login/")
    page.fill("#id_username", estate["operator"].email)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    pages = {
        "overview": "/admin/overview/",
        "host": f"/admin/compute/host/{estate['host'].pk}/change/",
        "tenant": f"/admin/tenants/tenant/{estate['tenant'].pk}/change/",
        "hosts": "/admin/compute/host/",
    }
    for name, path in pages.items():
        response = page.goto(path)
        assert response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} runs {overflow} px off the side at {width} px"
        screenshot(page, f"operators-{name}-{width}")
    assert page.locator("text=The disk could not be read").count() == 0  # the last page is the host list
    assert [error for error in page.console_errors if "CSP" in error] == []
