"""Where the URL and token come from: the command line, then HANGAR_URL / HANGAR_TOKEN, then a profile of the
config file (`~/.config/hangar/config.toml`, or $HANGAR_CONFIG)."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hangar_cli.errors import AUTH, USAGE, HangarError

DEFAULT_PROFILE = "default"


def config_path() -> Path:
    if os.environ.get("HANGAR_CONFIG"):
        return Path(os.environ["HANGAR_CONFIG"]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "hangar" / "config.toml"


def normalise_url(url: str) -> str:
    """The site's root, whether given as `https://host`, `https://host/` or `https://host/api/v1/`."""
    url = url.strip().rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    if not url.startswith(("http://", "https://")):
        raise HangarError(f"The URL {url!r} must start with http:// or https://.", exit_code=USAGE)
    return url


def load() -> dict:
    path = config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise HangarError(f"{path} is not valid TOML: {error}", exit_code=USAGE) from error


def _toml_string(value: str) -> str:
    # A JSON string with only ASCII is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def dump(data: dict) -> str:
    lines = []
    if data.get("current_profile"):
        lines += [f"current_profile = {_toml_string(data['current_profile'])}", ""]
    for name, profile in sorted(data.get("profiles", {}).items()):
        lines.append(f"[profiles.{_toml_string(name)}]")
        lines += [f"{key} = {_toml_string(str(value))}" for key, value in profile.items()]
        lines.append("")
    return "\n".join(lines)


def save(data: dict) -> Path:
    """Writes the file readable by its owner only (mode 600, folder 700): it holds tokens."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(dump(data))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


@dataclass
class Settings:
    url: str
    token: str
    profile: str


def resolve(*, url: str | None, token: str | None, profile: str | None) -> Settings:
    data = load()
    name = profile or os.environ.get("HANGAR_PROFILE") or data.get("current_profile") or DEFAULT_PROFILE
    profiles = data.get("profiles", {})
    if profile and profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none yet"
        raise HangarError(
            f"No profile named {profile!r} in {config_path()} (profiles: {known}).",
            exit_code=USAGE,
            hint=f"Create it with `hangar login --profile {profile}`.",
        )
    stored = profiles.get(name, {})
    url = url or os.environ.get("HANGAR_URL") or stored.get("url")
    token = token or os.environ.get("HANGAR_TOKEN") or stored.get("token")
    if not url or not token:
        missing = " and ".join(part for part, value in (("URL", url), ("token", token)) if not value)
        raise HangarError(
            f"No API {missing}.",
            exit_code=AUTH,
            hint="Run `hangar login`, or set HANGAR_URL and HANGAR_TOKEN "
            "(create a token on the dashboard's API tokens page).",
        )
    return Settings(url=normalise_url(url), token=token, profile=name)
