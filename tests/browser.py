"""Browser fixtures for every test that drives Chromium (tests/e2e and the pages' own browser tests).

Loaded once from tests/conftest.py, so the whole run shares one Playwright session: two sessions in one thread
would collide on Playwright's event loop.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Every page records the Content-Security-Policy violations it causes, with the script that caused them: the page
# checks (tests/e2e/pages.py) fail on the page's own, not on those of the accessibility checker they inject.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => window.__cspViolations.push({
    directive: event.violatedDirective, source: event.sourceFile || "", line: event.lineNumber, sample: event.sample,
}));
"""
SCREENSHOTS = Path(os.environ.get("HANGAR_SCREENSHOTS", Path(__file__).resolve().parents[1] / "var" / "screenshots"))


def pytest_collection_modifyitems(config, items):
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"browser tests need Chromium at {CHROMIUM} (scripts/ci-packages installs it)")
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (scripts/ci-packages installs it)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _playwright():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(_playwright):
    browser = _playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def _plain_http_live_server():
    """The live server is plain HTTP on 127.0.0.1, and its middleware reads these once, when it starts."""
    from django.conf import settings

    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def new_page(browser, _plain_http_live_server, live_server, request):
    """Pages in fresh browser contexts (separate cookie jars, so two people can be logged in at once)."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
        context.set_default_timeout(15_000)
        context.add_init_script(CSP_RECORDER)
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.console_errors = errors
        return page

    yield make
    if "e2e" in request.node.path.parts:  # the browser suite keeps each test's last page
        from tests.e2e.pages import keep_last_pages

        keep_last_pages(contexts, request.node.name)
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
