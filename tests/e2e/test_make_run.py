"""`make run` as someone runs it in a terminal: web, worker and beat start, it says when they are up and repeats the
demo log-ins, its log holds pages but not static files or heartbeats, and Ctrl-C stops all three gracefully.

make runs with this test's virtualenv (the install step is skipped) on a free port, the embedded defaults and a
private HANGAR_VAR_DIR. Ctrl-C is a SIGINT to make's whole process group, as a terminal sends it.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.stack import ROOT, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None or not Path("/proc").is_dir(), reason="needs make and /proc"),
]

NOT_INHERITED = ("DATABASE_URL", "CELERY_", "CACHE_URL", "SITE_URL", "GUNICORN_", "PYTEST", "DJANGO_ALLOW_ASYNC")


def _sessions() -> dict[int, int]:
    """Every live process: its pid and its session id."""
    sessions = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            sessions[int(stat.parent.name)] = int(fields[3])
    return sessions


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read()
        return response.status


@pytest.fixture
def make_run(tmp_path):
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith(NOT_INHERITED)}
    environment["HANGAR_VAR_DIR"] = str(tmp_path / "var")
    skip_install = "installed-by-the-test-run"
    log = tmp_path / "make-run.log"
    process = subprocess.Popen(
        ["make", "-o", skip_install, "run", f"INSTALLED={skip_install}", f"VENV={sys.prefix}", f"PORT={port}"],
        cwd=ROOT,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # A terminal's foreground job gets SIGINT with its default action, whatever pytest's own handling.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield process, log, f"http://127.0.0.1:{port}/"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Whatever outlived make in the sessions web, worker and beat were started in (one each).
        leftover = set(_started(log).values())
        for pid, session in _sessions().items():
            if session in leftover:
                os.kill(pid, signal.SIGKILL)


def _started(log: Path) -> dict[str, int]:
    """The processes make run said it started, by name: their pids, which are also their session ids."""
    return {name: int(pid) for name, pid in re.findall(r"system\s*\| (\w+) started \(pid=(\d+)\)", log.read_text())}


def test_make_run_starts_everything_and_ctrl_c_stops_it_cleanly(make_run):
    process, log, url = make_run
    deadline = time.monotonic() + 120
    while "log in as operator@" not in log.read_text().partition("Hangar is up")[2]:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-5000:]
        time.sleep(0.5)
    started = _started(log)
    assert set(started) == {"web", "worker", "beat"}

    assert _get(url + "accounts/login/") == 200
    assert _get(url + "static/css/hangar.css") == 200

    os.killpg(process.pid, signal.SIGINT)
    # make itself ends by the SIGINT it received, as any program in a terminal's foreground does, and reports
    # nothing when its recipe exits 0; it waits for the recipe, which waits for web, worker and beat.
    assert process.wait(timeout=60) == -signal.SIGINT
    output = log.read_text()

    assert f"Hangar is up on {url}" in output
    stopped = dict(re.findall(r"system\s*\| (\w+) stopped \(rc=(-?\d+)\)", output))
    assert stopped == {"web": "0", "worker": "0", "beat": "0"}, output[-3000:]
    assert "SIGKILL" not in output and "Error" not in output and "make:" not in output, output[-3000:]
    assert not set(started) & set(_sessions().values()), "processes of web, worker or beat outlived make run"

    access_log = [line for line in output.splitlines() if '"GET ' in line]
    assert any('"GET /accounts/login/ ' in line for line in access_log)
    quiet = [line for line in access_log if '"GET /static/' in line or '"GET /healthz' in line]
    assert quiet == [], [line for line in output.splitlines() if "health check" in line]
    heartbeats = [line for line in output.splitlines() if "heartbeat" in line and ("INFO" in line or "DEBUG" in line)]
    assert heartbeats == [], "heartbeat lines belong to DEBUG, below `make run`'s INFO level"
