"""Unit tests of the `hangar` client: a fake API behind httpx.MockTransport, the CLI run as its console script."""

import json
from dataclasses import dataclass

import httpx
import pytest
from fakeapi import FLAVORS, IMAGES, URL, FakeApi, page

from hangar_cli import main
from hangar_cli import state as state_module


@pytest.fixture
def api(monkeypatch, tmp_path):
    fake = FakeApi()
    fake.on("GET", "flavors/", page(FLAVORS)).on("GET", "images/", page(IMAGES))
    monkeypatch.setattr(state_module, "transport", httpx.MockTransport(fake.handle))
    monkeypatch.setenv("HANGAR_URL", URL)
    monkeypatch.setenv("HANGAR_TOKEN", "hgr_test")
    monkeypatch.setenv("HANGAR_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("HANGAR_POLL_INTERVAL", "0")
    monkeypatch.delenv("HANGAR_PROFILE", raising=False)
    # Tables piped into the test keep their natural width, whatever terminal width the test runner announces.
    monkeypatch.delenv("COLUMNS", raising=False)
    return fake


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def hangar(capsys):
    """Runs `hangar ARGS…` as the console script does; returns its exit code and output."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main.run(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run
