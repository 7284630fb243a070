"""Operating a machine in Chromium, on pages served by the ASGI application (as gunicorn's uvicorn workers serve
them): the interactive console (a command typed into a simulated machine's terminal and its answer read off the
screen), the usage graphs over a month of synthetic samples, and an alert policy made from the instance page."""

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from compute import services
from compute.drivers.simulated_guest import synthetic_counters
from compute.monitoring.models import Resolution, Sample
from compute.monitoring.services import alerts_evaluate
from tenants.roles import Role
from tests.browser import CHROMIUM, SCREENSHOTS, screenshot
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
    """A member and a running simulated machine of theirs (2 vCPUs)."""
    host = HostFactory(name="hv-operate", boot_seconds=0, stop_seconds=0)
    user = UserFactory(email="operator-of-machines@example.com")
    membership = MembershipFactory(user=user, role=Role.MEMBER)
    instance = services.instance_launch(
        tenant=membership.tenant,
        user=user,
        name="web-console",
        flavor=FlavorFactory(name="m2.medium", vcpus=2, ram_mib=4096, disk_gib=40),
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


HISTORY = {
    Resolution.MINUTE: timedelta(hours=2),
    Resolution.FIVE_MINUTES: timedelta(days=8),
    Resolution.HOUR: timedelta(days=31),
}


def _history(instance) -> None:
    """What a month of sampling would have stored: each period's average rates from the synthetic counters."""
    now = int(timezone.now().timestamp())
    rows = []
    for resolution, span in HISTORY.items():
        last = now // resolution * resolution - resolution
        for start in range(last - int(span.total_seconds()), last + 1, resolution):
            before = synthetic_counters(uuid=str(instance.pk), vcpus=2, at=_at(start))
            after = synthetic_counters(uuid=str(instance.pk), vcpus=2, at=_at(start + resolution))
            rows.append(
                Sample(
                    instance=instance,
                    resolution=resolution,
                    period_start=start,
                    samples=resolution // 60,
                    cpu_percent=(after.cpu_time_ns - before.cpu_time_ns) / (resolution * 1e9 * 2) * 100,
                    disk_read_bps=(after.disk_read_bytes - before.disk_read_bytes) / resolution,
                    disk_write_bps=(after.disk_write_bytes - before.disk_write_bytes) / resolution,
                    net_in_bps=(after.net_rx_bytes - before.net_rx_bytes) / resolution,
                    net_out_bps=(after.net_tx_bytes - before.net_tx_bytes) / resolution,
                )
            )
    Sample.objects.bulk_create(rows, batch_size=2000)


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def test_usage_graphs_for_each_range_and_an_alert_policy_from_the_page(page, machine):
    user, instance = machine
    _history(instance)
    _log_in(page, user)
    page.goto(f"/instances/{instance.pk}/")

    usage = page.locator("#instance-usage")
    usage.scroll_into_view_if_needed()  # the chart library loads when the graphs come near the screen
    usage.locator(".uplot").nth(2).wait_for()
    assert usage.locator(".uplot").count() == 3
    assert "CPU" in usage.locator(".u-legend").first.inner_text()
    usage.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    usage.screenshot(path=str(SCREENSHOTS / "usage-24h.png"))
    for range_key in ("1h", "7d", "30d"):
        page.click(f"[data-usage-range='{range_key}']")
        page.locator(f"[data-usage-range='{range_key}'][aria-pressed='true']").wait_for()
        page.wait_for_timeout(300)
        usage.screenshot(path=str(SCREENSHOTS / f"usage-{range_key}.png"))
    assert usage.locator("[data-usage-empty]").is_hidden()
    assert page.console_errors == []
    screenshot(page, "instance-with-usage")

    # "Get an alert" leads to the policy form with this machine chosen.
    page.click("text=Get an alert")
    page.fill("#id_name", "web-console busy")
    page.fill("#id_threshold", "80")
    assert page.locator("#id_instance").input_value() == str(instance.pk)
    page.click("button:has-text('Create policy')")
    page.locator("h1", has_text="web-console busy").wait_for()
    assert "CPU above 80 % for 5 min on web-console." in page.locator("main").inner_text()

    # Five busy minutes: the policy fires, and its page shows the firing with the notice that went out.
    now = timezone.now()
    minute = int(now.timestamp()) // 60 * 60
    Sample.objects.filter(instance=instance, resolution=Resolution.MINUTE, period_start__gt=minute - 300).delete()
    for n in range(5):
        Sample.objects.create(
            instance=instance, resolution=Resolution.MINUTE, period_start=minute - n * 60, cpu_percent=93 + n,
            disk_read_bps=0, disk_write_bps=0, net_in_bps=0, net_out_bps=0,
        )  # fmt: skip
    assert alerts_evaluate(now=now).fired
    page.reload()
    history = page.locator("section", has_text="History")
    assert "Firing" in history.inner_text() and "at 93 %" in history.inner_text()
    assert "Fired · E-mail: Sent" in " ".join(history.inner_text().split())
    screenshot(page, "alert-history")
    screenshot(page, "alert-policy")
