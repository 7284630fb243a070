"""Configuration comes from the environment; a malformed value stops start-up with the variable's name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal import env

ROOT = Path(__file__).resolve().parents[2]


def _check(tmp_path, **variables) -> subprocess.CompletedProcess:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "CELERY_", "CACHE_URL"))
    }
    environment.update(HANGAR_VAR_DIR=str(tmp_path), **variables)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysqlish://nowhere"),
        ("DATABASE_URL", "postgres://"),
        ("CELERY_BROKER_URL", "carrier-pigeon://loft"),
        ("DEBUG", "maybe"),
        ("QUOTA_INSTANCES", "ten"),
        ("BILLING_CURRENCY", "EURO"),
        ("EMAIL_URL", "smtp://"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(tmp_path, variable, value):
    result = _check(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]


def test_defaults_start_cleanly_and_generate_a_secret_key_once(tmp_path):
    first = _check(tmp_path)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    _check(tmp_path)
    assert (tmp_path / "secret_key").read_text() == key


def test_secret_key_file_is_read(tmp_path, monkeypatch):
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    assert env.env_secret("SECRET_KEY") == "from-a-file"
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(Exception, match="SECRET_KEY_FILE"):
        env.env_secret("SECRET_KEY")


def test_sqlite_default_uses_wal_and_immediate_transactions(tmp_path):
    config = env.env_database(
        "UNSET_DATABASE_URL_FOR_TEST", f"sqlite:///{tmp_path}/db.sqlite3", sqlite_options={"x": 1}
    )
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["OPTIONS"] == {"x": 1}
    from django.conf import settings

    if settings.DATABASE_IS_SQLITE:
        options = settings.DATABASES["default"]["OPTIONS"]
        assert options["transaction_mode"] == "IMMEDIATE"
        assert "journal_mode=WAL" in options["init_command"]
