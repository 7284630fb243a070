"""The interactive console in Chromium: the page served by the ASGI application (as gunicorn's uvicorn workers serve
it), a terminal that opens a WebSocket to a simulated machine, a command typed and its answer read off the screen."""

import shutil
import threading
import time
from pathlib import Path

import pytest

from compute import services
from tenants.roles import Role
from tests.browser import CHROMIUM, screenshot
from tests.e2e.stack import free_port
from tests.factories import MembershipFactory, UserFactory
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()), reason=f"no Chromium at {CHROMIUM}"),
]

PASSWORD = "correct-horse-battery"


@pytest.fixture
def asgi_server(_plain_http_live_server):
    """portal.asgi's application under uvicorn in a thread of this process (so it sees the test database)."""
    import uvicorn
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from portal.asgi import application

    port = free_port()
    config = uvicorn.Config(
        ASGIStaticFilesHandler(application), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture
def page(browser, asgi_server):
    context = browser.new_context(base_url=asgi_server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.console_errors = errors
    yield page
    context.close()


@pytest.fixture
def machine(db):
    host = HostFactory(name="hv-console", boot_seconds=0, stop_seconds=0)
    user = UserFactory(email="console@example.com")
    membership = MembershipFactory(user=user, role=Role.MEMBER)
    instance = services.instance_launch(
        tenant=membership.tenant,
        user=user,
        name="web-console",
        flavor=FlavorFactory(name="c1.small", vcpus=1, ram_mib=1024, disk_gib=10),
        image=ImageFactory(name="Debian 12"),
        keys=[],
    )
    instance.refresh_from_db()
    assert instance.state == "running" and instance.host == host
    return user, instance


def _log_in(page, user):
    page.goto("/accounts/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_typing_a_command_in_the_console_shows_the_machines_answer(page, machine):
    user, instance = machine
    _log_in(page, user)
    page.goto(f"/instances/{instance.pk}/")

    page.click("[data-terminal-connect]")
    status = page.locator("[data-terminal-status]")
    rows = page.locator("#instance-terminal .xterm-rows")
    page.locator("[data-terminal-status]", has_text="Connected").wait_for()
    rows.get_by_text("root@web-console:~#").first.wait_for()
    page.keyboard.type("echo hello from the browser")
    page.keyboard.press("Enter")
    page.keyboard.type("uname -a")
    page.keyboard.press("Enter")

    rows.get_by_text("Linux web-console 6.1.0-simulated").wait_for()
    text = rows.inner_text()
    assert "\nhello from the browser\n" in text.replace("\xa0", " ")
    assert status.inner_text() == "Connected"
    # xterm.js's styles went through the CSP-safe shim: nothing was refused, and the rows are laid out in cells.
    assert page.console_errors == []
    assert rows.evaluate("element => getComputedStyle(element.querySelector('span') || element).whiteSpace") == "pre"
    screenshot(page, "console-interactive")
