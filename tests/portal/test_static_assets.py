"""Speed as felt: no page loads more than 100 KB of CSS and JavaScript, and static files are fingerprinted, compressed
and cached for a year (whitenoise's CompressedManifestStaticFilesStorage, as production serves them)."""

import gzip
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from whitenoise.storage import CompressedManifestStaticFilesStorage

from billing.pricing import month_start
from billing.services.metering import invoices_refresh
from compute.models import InstanceState
from tenants.roles import Role
from tests.conftest import login_client
from tests.factories import MembershipFactory
from tests.factories.billing import SegmentFactory
from tests.factories.compute import InstanceFactory, SSHKeyFactory

BUDGET = 100 * 1024  # bytes of CSS and JavaScript as they travel (compressed), per page
ASSET = re.compile(r'<(?:script[^>]+src|link[^>]+rel="stylesheet"[^>]+href)="(/static/[^"]+)"')
STATIC_DIR = Path(settings.BASE_DIR) / "static"


def page_assets(html: str) -> list[str]:
    """The CSS and JavaScript a page loads by itself (libraries fetched on demand, such as xterm.js, are not)."""
    return ASSET.findall(html)


def transfer_size(url: str) -> int:
    return len(gzip.compress((STATIC_DIR / url.removeprefix("/static/")).read_bytes(), compresslevel=9))


@pytest.fixture
def lived_in(db):
    """An owner whose organisation has machines, a key and this month's usage: the heaviest version of each page."""
    membership = MembershipFactory(role=Role.OWNER)
    tenant = membership.tenant
    SSHKeyFactory(tenant=tenant, name="laptop")
    running = InstanceFactory(tenant=tenant, name="web-1", state=InstanceState.RUNNING)
    InstanceFactory(tenant=tenant, name="web-2", state=InstanceState.BUILDING)
    SegmentFactory(tenant=tenant, resource_name="web-1")
    invoices_refresh(period_start=month_start(running.created_at), as_of=running.created_at)
    return {"client": login_client(membership.user), "instance": running}


def test_no_page_loads_more_than_100_kb_of_css_and_javascript(lived_in):
    client = lived_in["client"]
    pages = [
        reverse("home"),
        reverse("compute:instance-list"),
        reverse("compute:instance-launch"),
        reverse("compute:instance-detail", args=[lived_in["instance"].pk]),
        reverse("compute:sshkey-list"),
        reverse("network:network-list"),
        reverse("billing:overview"),
        reverse("team"),
    ]
    weights = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        assets = page_assets(response.content.decode())
        assert any(url.endswith(".css") for url in assets), f"{path} loads no style sheet: the pattern is stale"
        weights[path] = sum(transfer_size(url) for url in assets)
    weights[reverse("login")] = sum(transfer_size(url) for url in page_assets(Client().get(reverse("login")).text))
    too_heavy = {path: weight for path, weight in weights.items() if weight > BUDGET}
    assert not too_heavy, f"pages over {BUDGET} bytes of CSS and JS: {too_heavy}"


def test_the_instance_page_fetches_the_console_and_graph_libraries_only_when_needed(lived_in):
    page = lived_in["client"].get(reverse("compute:instance-detail", args=[lived_in["instance"].pk])).content.decode()
    assets = page_assets(page)
    assert not [url for url in assets if "xterm" in url or "uplot" in url.lower()]
    assert 'data-xterm-js="/static/vendor/xterm/xterm.js"' in page  # what console.js fetches on Connect
    assert 'data-uplot-js="/static/vendor/uplot/uPlot.iife.min.js"' in page


class PartlyCollectedStorage(CompressedManifestStaticFilesStorage):
    """Production's storage, for a test that collects only some files: the others keep their plain names."""

    manifest_strict = False


def test_static_files_are_fingerprinted_compressed_and_cached_for_a_year(db, settings, tmp_path):
    # Production's storage over the files the log-in page uses (and what its style sheet refers to): collecting and
    # compressing every library takes minutes.
    settings.STORAGES = {
        "default": settings.STORAGES["default"],
        "staticfiles": {"BACKEND": f"{__name__}.PartlyCollectedStorage"},
    }
    source = tmp_path / "source"
    for folder in ("css", "img", "js", "vendor/inter"):
        shutil.copytree(STATIC_DIR / folder, source / folder)
    settings.STATICFILES_DIRS = [source]
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    settings.STATIC_ROOT = tmp_path / "collected"
    settings.WHITENOISE_USE_FINDERS = False
    settings.WHITENOISE_AUTOREFRESH = False
    call_command("collectstatic", interactive=False, verbosity=0)
    tmp_path = settings.STATIC_ROOT

    client = Client()
    page = client.get(reverse("login")).content.decode()
    sheet = next(url for url in page_assets(page) if "/css/hangar." in url)
    assert re.fullmatch(r"/static/css/hangar\.[0-9a-f]{12}\.css", sheet), sheet
    response = client.get(sheet, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    cache = response["Cache-Control"]
    assert "immutable" in cache and "max-age=315360000" in cache
    assert (tmp_path / "staticfiles.json").exists()
