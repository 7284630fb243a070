"""cloud-init seeds: the network-config, written by libyaml's emitter when PyYAML has it, reads as the Python one's."""

import pytest
import yaml

from compute.drivers.base import NicSpec
from compute.network.cloudinit import meta_data, network_config, user_data


def test_the_network_config_is_the_text_the_python_emitter_writes():
    nics = [
        NicSpec(mac="52:54:00:0b:57:59", network_id="a", ip="10.202.0.3", prefix=16),
        NicSpec(mac="52:54:00:ff:00:1e", network_id="b", ip="192.168.7.254", prefix=24),
    ]

    text = network_config(nics)

    document = yaml.safe_load(text)
    assert text == yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True)
    assert document["ethernets"]["eth0"] == {
        "match": {"macaddress": "52:54:00:0b:57:59"},
        "set-name": "eth0",
        "dhcp4": False,
        "addresses": ["10.202.0.3/16"],
        "routes": [{"to": "0.0.0.0/0", "via": "10.202.0.1"}],
    }
    assert "routes" not in document["ethernets"]["eth1"]  # only the first interface has the default route


def _python_emitter(document) -> str:
    return yaml.dump(
        document, Dumper=yaml.SafeDumper, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True
    )


@pytest.mark.parametrize("hostname", ["web-1", "null", "yes", "123", "x" * 63])
@pytest.mark.parametrize(
    "ssh_keys",
    [
        [],
        ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ana@laptop"],
        ["ssh-rsa " + "A" * 700 + "== me@example.com", "ssh-ed25519 AAAA: odd comment #1"],
        ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl zoë@portátil"],
    ],
)
def test_meta_data_and_our_user_data_are_the_text_the_python_emitter_writes(hostname, ssh_keys):
    """Without user-data of theirs, libyaml writes them when every value is ASCII (the Python emitter otherwise)."""
    meta = meta_data(instance_id="5f0c7a36-1d3e-4f57-9b1a-0e2d7c9a8b41", hostname=hostname, ssh_keys=ssh_keys)
    ours = user_data(hostname=hostname, ssh_keys=ssh_keys, text="")

    assert meta == _python_emitter(yaml.safe_load(meta))
    assert yaml.safe_load(meta)["local-hostname"] == hostname
    assert ours.startswith("#cloud-config\n")
    assert ours.removeprefix("#cloud-config\n") == _python_emitter(yaml.safe_load(ours))
    assert yaml.safe_load(ours).get("ssh_authorized_keys", []) == ssh_keys


@pytest.mark.parametrize("value", ["web-1", "null", "yes", "12:30:45", "52:54:00:12:34:56", "0x1F", "", "~", "1e3"])
def test_the_network_config_quotes_what_would_not_read_back_as_text(value):
    """The network-config is written from events: a value that YAML would read as something else is quoted, as the
    Python emitter quotes it."""
    nics = [NicSpec(mac=value, network_id="a", ip="10.202.0.3", prefix=16)]

    text = network_config(nics)

    assert text == _python_emitter(yaml.safe_load(text))
    assert yaml.safe_load(text)["ethernets"]["eth0"]["match"]["macaddress"] == value
