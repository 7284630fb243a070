"""cloud-init seeds: the network-config, written by libyaml's emitter when PyYAML has it, reads as the Python one's."""

import yaml

from compute.drivers.base import NicSpec
from compute.network.cloudinit import network_config


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
