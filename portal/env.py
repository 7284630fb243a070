"""Typed readers for environment variables.

Every setting that comes from the environment goes through one of these, so a
malformed value stops start-up with a message that names the variable.
"""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None else None


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_networks(name: str, default: list[str]) -> list:
    """A comma-separated list of networks (CIDR, or single addresses); a malformed one stops start-up."""
    import ipaddress

    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not a network such as 10.0.0.0/8 or 192.0.2.7.") from None
    return networks


def env_bind_url(name: str, default: str) -> str:
    """The http:// URL that reaches a server bound to NAME, a `host:port` as gunicorn takes it.

    A wildcard host (0.0.0.0, [::]) is reached from this machine as 127.0.0.1.
    """
    bind = env_str(name, default)
    if bind.startswith(("unix:", "fd://")):
        raise ImproperlyConfigured(f"{name}={bind!r} is no address a link can reach; set SITE_URL.")
    host, colon, port = bind.rpartition(":")
    if not colon or not port.isdigit():
        raise ImproperlyConfigured(f"{name}={bind!r} must be host:port, such as 127.0.0.1:8000.")
    if host in ("", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def env_secret(name: str, *, generated_file: Path | None = None) -> str:
    """Read NAME, or the file named by NAME_FILE; fall back to a key generated once into generated_file."""
    value = _raw(name)
    if value:
        return value
    file_name = _raw(f"{name}_FILE")
    if file_name:
        try:
            secret = Path(file_name).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {error.strerror}.") from None
        if not secret:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} is empty.")
        return secret
    if generated_file is None:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set.")
    if not generated_file.exists():
        generated_file.parent.mkdir(parents=True, exist_ok=True)
        generated_file.write_text(secrets.token_urlsafe(50))
        generated_file.chmod(0o600)
    return generated_file.read_text().strip()


def env_database(name: str, default: str, *, sqlite_options: dict, prepare_threshold: int = 0) -> dict:
    """Parse a database URL (sqlite:/// or postgres://) into a Django DATABASES entry. On PostgreSQL a statement run
    through `portal.sql.prepared_cursor` is prepared once a connection has run it `prepare_threshold` times (0:
    never); the ORM's statements, bound client-side, never are."""
    import dj_database_url

    url = env_str(name, default)
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except (ValueError, KeyError) as error:
        raise ImproperlyConfigured(f"{name}={url!r} is not a database URL we understand ({error}).") from None
    engine = config.get("ENGINE", "")
    if engine == "django.db.backends.sqlite3":
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name}={url!r} names no SQLite file.")
        # SQLite connections are cheap, and a persistent one would hold the write lock between requests.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {**sqlite_options, **config.get("OPTIONS", {})}
    elif engine == "django.db.backends.postgresql":
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name}={url!r} names no database.")
        config["OPTIONS"] = {"prepare_threshold": prepare_threshold or None, **config.get("OPTIONS", {})}
    else:
        raise ImproperlyConfigured(f"{name}={url!r}: only sqlite:// and postgres:// URLs are supported.")
    return config


def env_url_scheme(name: str, default: str, *, allowed: tuple[str, ...]) -> str:
    url = env_str(name, default)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in allowed:
        raise ImproperlyConfigured(f"{name}={url!r} must start with one of: {', '.join(s + '://' for s in allowed)}.")
    return url
