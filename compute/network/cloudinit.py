"""cloud-init NoCloud seeds, built from plain values: what a machine reads on its first boot.

- meta-data: the instance id, the hostname (the instance's name) and the picked SSH keys (`public-keys`, which
  NoCloud installs for the image's default user — and, with `disable_root: false`, for root).
- user-data: the user's own document, checked by `clean_user_data()`. A `#cloud-config` document is merged with
  Hangar's (hostname, keys, root log-in by key only; the user's settings win, keys are added to ours); a script
  (`#!…`) is passed as it is, since cloud-init runs a script only when it is the whole document.
- network-config (version 2): a static address for every NIC, matched by MAC; only the first NIC has a default
  route (via its network's gateway, the host), so replies to a public address mapped onto it leave the way they came.

Nothing here touches the database: compute.services.operations hands in the instance's values.
"""

from __future__ import annotations

import ipaddress

import yaml

from compute.drivers.base import CloudInitSeed, NicSpec
from portal.errors import InvalidRequest

MAX_USER_DATA_BYTES = 32 * 1024
CLOUD_CONFIG = "#cloud-config"
SCRIPT = "#!"


def _error(message: str, *, line: int | None = None) -> InvalidRequest:
    details: dict = {"field": "user_data"}
    if line is not None:
        details["line"] = line
    return InvalidRequest(message, code="invalid_user_data", details=details)


def _yaml_error(error: yaml.YAMLError) -> InvalidRequest:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return _error(f"The cloud-config is not valid YAML: {problem}.")
    line = mark.line + 1
    message = f"The cloud-config is not valid YAML: line {line}, column {mark.column + 1}: {problem}"
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None and context_mark.line != mark.line:
        message += f" ({context} that starts on line {context_mark.line + 1})"
    return _error(message + ".", line=line)


def _parse_cloud_config(text: str) -> dict:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _yaml_error(error) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise _error("A cloud-config document is a mapping of settings (key: value), not a list or a single value.")
    keys = document.get("ssh_authorized_keys")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
        raise _error("ssh_authorized_keys is a list of public keys, one per item.")
    return document


def user_data_kind(text: str) -> str:
    """ "cloud-config", "script" or "" (none) for user-data that clean_user_data() accepted."""
    if not text:
        return ""
    return "script" if text.startswith(SCRIPT) else "cloud-config"


def clean_user_data(text: str | None) -> str:
    """The user-data to store (line endings made Unix), or an InvalidRequest naming the problem and its line.

    Accepted: nothing; a `#cloud-config` document that is valid YAML and a mapping; a script starting with `#!`.
    """
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return ""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _error("User-data is not valid UTF-8 text.") from None
    if size > MAX_USER_DATA_BYTES:
        raise _error(f"User-data is at most 32 KiB; this is {size / 1024:.1f} KiB.")
    if "\x00" in text:
        raise _error("User-data is text; it contains a NUL character.")
    first_line = text.split("\n", 1)[0].rstrip()
    if first_line == CLOUD_CONFIG:
        _parse_cloud_config(text)
        return text
    if first_line.startswith(SCRIPT):
        return text
    raise _error(
        "User-data starts with #cloud-config (a cloud-config document) or #! (a script such as #!/bin/sh) on its "
        "first line.",
        line=1,
    )


# libyaml's emitter (when PyYAML has it) writes a document of our own keys and ASCII values (the network-config, and
# the meta-data and user-data of a machine without user-data: names, keys, addresses) exactly as the pure-Python one
# does, in a fraction of the time; documents with the user's text, or a non-ASCII value, keep the Python emitter,
# since libyaml escapes non-ASCII characters and lays out long keys differently.
FAST_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_RESOLVER = yaml.resolver.Resolver()
_STR, _BOOL, _INT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"


def _dumper(*values: str) -> type:
    return FAST_DUMPER if all(value.isascii() for value in values) else yaml.SafeDumper


def _dump(document: dict, *, dumper=yaml.SafeDumper) -> str:
    if dumper is not yaml.SafeDumper:
        return _emit(document, dumper=dumper)
    return yaml.dump(document, Dumper=dumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True)


def _emit(document: dict, *, dumper) -> str:
    """What yaml.dump(document, sort_keys=False, default_flow_style=False) writes, from the events its representer
    and serializer would make for our plain documents (mappings, lists, strings, booleans, integers; nothing
    shared), without building their nodes: half the CPU of the dump."""
    events: list = [yaml.StreamStartEvent(), yaml.DocumentStartEvent()]
    _events(document, events)
    events += [yaml.DocumentEndEvent(), yaml.StreamEndEvent()]
    return yaml.emit(events, Dumper=dumper, width=4096, allow_unicode=True)


def _events(value, events: list) -> None:
    if isinstance(value, dict):
        events.append(yaml.MappingStartEvent(None, None, True, flow_style=False))
        for key, item in value.items():
            _events(key, events)
            _events(item, events)
        events.append(yaml.MappingEndEvent())
    elif isinstance(value, list):
        events.append(yaml.SequenceStartEvent(None, None, True, flow_style=False))
        for item in value:
            _events(item, events)
        events.append(yaml.SequenceEndEvent())
    elif isinstance(value, bool):
        events.append(yaml.ScalarEvent(None, _BOOL, (True, False), "true" if value else "false"))
    elif isinstance(value, int):
        events.append(yaml.ScalarEvent(None, _INT, (True, False), str(value)))
    else:
        # Plain when it reads back as a string (not "yes", "null", "12:30" …), else quoted: as the serializer decides.
        plain = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR
        events.append(yaml.ScalarEvent(None, _STR, (plain, True), value))


def meta_data(*, instance_id: str, hostname: str, ssh_keys: list[str]) -> str:
    document: dict = {"instance-id": instance_id, "local-hostname": hostname}
    if ssh_keys:
        document["public-keys"] = list(ssh_keys)
    return _dump(document, dumper=_dumper(instance_id, hostname, *ssh_keys))


def user_data(*, hostname: str, ssh_keys: list[str], text: str) -> str:
    if user_data_kind(text) == "script":
        return text
    ours: dict = {"hostname": hostname, "disable_root": False, "ssh_pwauth": False, "ssh_authorized_keys": []}
    theirs = _parse_cloud_config(text) if text else {}
    merged = {**ours, **theirs}
    keys = [*ssh_keys, *theirs.get("ssh_authorized_keys", [])]
    merged["ssh_authorized_keys"] = list(dict.fromkeys(keys))
    if not merged["ssh_authorized_keys"]:
        del merged["ssh_authorized_keys"]
    dumper = yaml.SafeDumper if theirs else _dumper(hostname, *keys)
    return f"{CLOUD_CONFIG}\n{_dump(merged, dumper=dumper)}"


def network_config(nics: list[NicSpec]) -> str:
    ethernets = {}
    for index, nic in enumerate(nics):
        interface = ipaddress.IPv4Interface(f"{nic.ip}/{nic.prefix}")
        entry: dict = {
            "match": {"macaddress": nic.mac},
            "set-name": f"eth{index}",
            "dhcp4": False,
            "addresses": [str(interface)],
        }
        if index == 0:
            gateway = interface.network.network_address + 1
            entry["routes"] = [{"to": "0.0.0.0/0", "via": str(gateway)}]
        ethernets[f"eth{index}"] = entry
    return _dump({"version": 2, "ethernets": ethernets}, dumper=FAST_DUMPER)


def build_seed(
    *, instance_id: str, hostname: str, ssh_keys: list[str], text: str, nics: list[NicSpec]
) -> CloudInitSeed:
    """The whole seed of one machine; `text` is its stored (already cleaned) user-data."""
    return CloudInitSeed(
        meta_data=meta_data(instance_id=instance_id, hostname=hostname, ssh_keys=ssh_keys),
        user_data=user_data(hostname=hostname, ssh_keys=ssh_keys, text=text),
        network_config=network_config(nics),
    )
