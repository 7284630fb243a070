"""Configuration comes from the environment; a malformed value stops start-up with the variable's name."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal import env

ROOT = Path(__file__).resolve().parents[2]


def _manage(tmp_path, *arguments: str, **variables) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "CELERY_", "CACHE_URL", "SITE_URL", "GUNICORN_"))
    }
    environment.update(HANGAR_VAR_DIR=str(tmp_path), **variables)
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _check(tmp_path, **variables) -> subprocess.CompletedProcess:
    return _manage(tmp_path, "check", **variables)


def _settings(tmp_path, *names: str, **variables) -> dict:
    """The named settings as the project reads them from these variables (in a fresh process)."""
    code = (
        f"import json; from django.conf import settings as s; print(json.dumps({{n: getattr(s, n) for n in {names}}}))"
    )
    result = _manage(tmp_path, "shell", "-c", code, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # the last line: the shell may announce its imports first


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
        ("EMAIL_URL", "smtp+tls://mail.example.com:smtp"),
        ("EMAIL_URL", "smtp+ssl://mail.example.com:99999"),
        ("EMAIL_URL", "sendmail://localhost"),
        ("CACHE_URL", "memcached://cache:11211"),
        ("CACHE_URL", "redis://"),
        ("CACHE_URL", "rediss://:secret@/0"),
        ("CACHE_URL", "redis://cache:port/0"),
        ("CACHE_URL", "file://"),
        ("GUNICORN_BIND", "unix:/run/hangar.sock"),
        ("GUNICORN_BIND", "localhost"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(tmp_path, variable, value):
    result = _check(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("url", "location"),
    [
        # A Redis ACL user, TLS options and an IPv6 host reach redis-py as written.
        ("redis://hangar:s%40cret@cache.example.com:6380/2", "redis://hangar:s%40cret@cache.example.com:6380/2"),
        ("rediss://cache.example.com/0?ssl_cert_reqs=none", "rediss://cache.example.com/0?ssl_cert_reqs=none"),
        ("redis://[::1]:6379/9", "redis://[::1]:6379/9"),
        ("file:///srv/hangar/cache", "/srv/hangar/cache"),
    ],
)
def test_cache_url_reaches_the_cache_backend_whole(tmp_path, url, location):
    caches = _settings(tmp_path, "CACHES", CACHE_URL=url)["CACHES"]
    assert caches["default"]["LOCATION"] == location


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("console://", {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}),
        ("locmem://", {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}),
        (
            "smtp+tls://apikey:p%40ss@smtp.example.com",
            {
                "EMAIL_HOST": "smtp.example.com",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "apikey",
                "EMAIL_HOST_PASSWORD": "p@ss",
                "EMAIL_USE_TLS": True,
                "EMAIL_USE_SSL": False,
            },
        ),
        ("smtp+ssl://smtp.example.com", {"EMAIL_PORT": 465, "EMAIL_USE_SSL": True, "EMAIL_USE_TLS": False}),
        ("smtp://relay.internal:2525", {"EMAIL_HOST": "relay.internal", "EMAIL_PORT": 2525, "EMAIL_USE_TLS": False}),
    ],
)
def test_email_url_configures_the_backend(tmp_path, url, expected):
    configured = _settings(tmp_path, *expected, EMAIL_URL=url)
    assert configured == expected


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


@pytest.mark.parametrize(
    ("bind", "site_url"),
    [
        ("127.0.0.1:8101", "http://127.0.0.1:8101"),
        ("0.0.0.0:8102", "http://127.0.0.1:8102"),
        ("[::1]:8103", "http://[::1]:8103"),
    ],
)
def test_links_in_e_mails_lead_to_the_address_make_run_binds(tmp_path, bind, site_url):
    # `make run HOST=… PORT=…` hands its address to web, worker and beat as GUNICORN_BIND.
    assert _settings(tmp_path, "SITE_URL", GUNICORN_BIND=bind) == {"SITE_URL": site_url}


def test_a_site_url_that_is_set_wins_over_the_bind(tmp_path):
    configured = _settings(tmp_path, "SITE_URL", SITE_URL="https://hangar.example.com/", GUNICORN_BIND="unix:/run/x")
    assert configured == {"SITE_URL": "https://hangar.example.com"}
