"""What the libvirt driver hands to the host: domain, volume, pool, network and nwfilter definitions, and the
nftables rule set of the 1:1 NAT (pure functions, no libvirt).

Kept apart from compute/drivers/libvirt.py so the definitions can be read, and tested, on their own.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from xml.etree import ElementTree

from compute.drivers.base import DhcpHost, DomainSpec, FirewallRuleSpec, NatMapping, NetworkSpec

DOMAIN_PREFIX = "hangar-"
POOL_NAME = "hangar"
METADATA_NAMESPACE = "https://hangar.invalid/xmlns/libvirt/1"
NETWORK_PREFIX = "hangar-net-"
BRIDGE_PREFIX = "hgn-"  # + 11 characters: Linux limits interface names to 15
FILTER_PREFIX = "hangar-fw-"
NAT_TABLE = "hangar"
# Marks connections the host itself opens to a public address, so their source becomes the gateway address (the
# guest can always answer that one; it may have no route back to the host's other addresses).
HOST_ORIGINATED_MARK = 0x48414E47
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def domain_name(uuid: str) -> str:
    return f"{DOMAIN_PREFIX}{uuid}"


def network_name(network_id: str) -> str:
    return f"{NETWORK_PREFIX}{network_id}"


def bridge_name(network_id: str) -> str:
    return BRIDGE_PREFIX + re.sub(r"[^a-z0-9]", "", network_id.lower())[:11]


def nwfilter_name(uuid: str) -> str:
    return f"{FILTER_PREFIX}{uuid}"


def seed_volume_name(uuid: str) -> str:
    return f"{uuid}.seed.iso"


@dataclass(frozen=True)
class Nic:
    """One interface of a domain as libvirt sees it: the libvirt network it is on and its MAC address."""

    network: str
    mac: str


def domain_xml(
    spec: DomainSpec,
    *,
    domain_type: str,
    disk_path: str,
    console_path: str,
    network: str = "",
    nics: tuple[Nic, ...] = (),
    firewall: str = "",
    seed_path: str = "",
    arch: str = "x86_64",
) -> str:
    """The persistent definition of one instance's domain.

    `nics` are virtio NICs on Hangar's networks, each filtered by the nwfilter `firewall`; without them, one NIC on
    the host network `network` (empty: user-mode networking). `seed_path` is attached as a read-only CD-ROM on a
    virtio-scsi controller (the NoCloud seed).
    """
    domain = ElementTree.Element("domain", type=domain_type)
    ElementTree.SubElement(domain, "name").text = domain_name(spec.uuid)
    ElementTree.SubElement(domain, "uuid").text = spec.uuid
    ElementTree.SubElement(domain, "title").text = spec.name
    metadata = ElementTree.SubElement(domain, "metadata")
    instance = ElementTree.SubElement(metadata, "hangar:instance", {"xmlns:hangar": METADATA_NAMESPACE})
    ElementTree.SubElement(instance, "hangar:name").text = spec.name
    for key, value in sorted(spec.metadata.items()):
        ElementTree.SubElement(instance, "hangar:meta", key=str(key)).text = str(value)
    ElementTree.SubElement(domain, "memory", unit="MiB").text = str(spec.ram_mib)
    ElementTree.SubElement(domain, "currentMemory", unit="MiB").text = str(spec.ram_mib)
    ElementTree.SubElement(domain, "vcpu", placement="static").text = str(spec.vcpus)

    os_element = ElementTree.SubElement(domain, "os")
    ElementTree.SubElement(os_element, "type", arch=arch).text = "hvm"
    image = spec.image
    if image.kernel_path:
        ElementTree.SubElement(os_element, "kernel").text = image.kernel_path
        if image.initrd_path:
            ElementTree.SubElement(os_element, "initrd").text = image.initrd_path
        cmdline = image.kernel_cmdline or "console=ttyS0"
        ElementTree.SubElement(os_element, "cmdline").text = cmdline
    else:
        ElementTree.SubElement(os_element, "boot", dev="hd")
    features = ElementTree.SubElement(domain, "features")
    ElementTree.SubElement(features, "acpi")
    ElementTree.SubElement(features, "apic")
    # A guest that powers itself off stays off (our stop); one that crashes is left for the reconciler to see.
    ElementTree.SubElement(domain, "on_poweroff").text = "destroy"
    ElementTree.SubElement(domain, "on_reboot").text = "restart"
    ElementTree.SubElement(domain, "on_crash").text = "destroy"

    devices = ElementTree.SubElement(domain, "devices")
    disk = ElementTree.SubElement(devices, "disk", type="file", device="disk")
    ElementTree.SubElement(disk, "driver", name="qemu", type="qcow2")
    ElementTree.SubElement(disk, "source", file=disk_path)
    ElementTree.SubElement(disk, "target", dev="vda", bus="virtio")
    if seed_path:
        ElementTree.SubElement(devices, "controller", type="scsi", index="0", model="virtio-scsi")
        cdrom = ElementTree.SubElement(devices, "disk", type="file", device="cdrom")
        ElementTree.SubElement(cdrom, "driver", name="qemu", type="raw")
        ElementTree.SubElement(cdrom, "source", file=seed_path)
        ElementTree.SubElement(cdrom, "target", dev="sda", bus="scsi")
        ElementTree.SubElement(cdrom, "readonly")
    for nic in nics:
        interface = ElementTree.SubElement(devices, "interface", type="network")
        ElementTree.SubElement(interface, "mac", address=nic.mac)
        ElementTree.SubElement(interface, "source", network=nic.network)
        ElementTree.SubElement(interface, "model", type="virtio")
        if firewall:
            ElementTree.SubElement(interface, "filterref", filter=firewall)
    if not nics:
        if network:
            interface = ElementTree.SubElement(devices, "interface", type="network")
            ElementTree.SubElement(interface, "source", network=network)
        else:
            interface = ElementTree.SubElement(devices, "interface", type="user")
        ElementTree.SubElement(interface, "model", type="virtio")
    # A pty serial port (so `virsh console` works) whose output virtlogd also writes to a file we can read back.
    serial = ElementTree.SubElement(devices, "serial", type="pty")
    ElementTree.SubElement(serial, "log", file=console_path, append="on")
    ElementTree.SubElement(serial, "target", port="0")
    console = ElementTree.SubElement(devices, "console", type="pty")
    ElementTree.SubElement(console, "target", type="serial", port="0")
    ElementTree.indent(domain)
    return ElementTree.tostring(domain, encoding="unicode")


def hangar_nics(xml: str) -> list[Nic]:
    """The NICs of a domain definition that are on Hangar networks, in order."""
    nics = []
    for interface in ElementTree.fromstring(xml).findall("devices/interface[@type='network']"):
        network, mac = interface.find("source"), interface.find("mac")
        if network is not None and mac is not None and network.get("network", "").startswith(NETWORK_PREFIX):
            nics.append(Nic(network=network.get("network"), mac=mac.get("address", "").lower()))
    return nics


def disk_volume_xml(*, name: str, capacity_gib: int, base_path: str = "", base_format: str = "raw") -> str:
    volume = ElementTree.Element("volume")
    ElementTree.SubElement(volume, "name").text = name
    ElementTree.SubElement(volume, "capacity", unit="G").text = str(capacity_gib)
    target = ElementTree.SubElement(volume, "target")
    ElementTree.SubElement(target, "format", type="qcow2")
    if base_path:
        backing = ElementTree.SubElement(volume, "backingStore")
        ElementTree.SubElement(backing, "path").text = base_path
        ElementTree.SubElement(backing, "format", type=base_format)
    return ElementTree.tostring(volume, encoding="unicode")


def raw_volume_xml(*, name: str, size_bytes: int) -> str:
    volume = ElementTree.Element("volume")
    ElementTree.SubElement(volume, "name").text = name
    ElementTree.SubElement(volume, "capacity", unit="bytes").text = str(size_bytes)
    target = ElementTree.SubElement(volume, "target")
    ElementTree.SubElement(target, "format", type="raw")
    return ElementTree.tostring(volume, encoding="unicode")


def volume_disk_xml(*, path: str, device: str, serial: str) -> str:
    """A volume as a domain's virtio disk (hot-pluggable); the guest finds it as /dev/disk/by-id/virtio-<serial>."""
    disk = ElementTree.Element("disk", type="file", device="disk")
    ElementTree.SubElement(disk, "driver", name="qemu", type="qcow2", cache="none")
    ElementTree.SubElement(disk, "source", file=path)
    ElementTree.SubElement(disk, "target", dev=device, bus="virtio")
    ElementTree.SubElement(disk, "serial").text = serial
    return ElementTree.tostring(disk, encoding="unicode")


def copy_target_xml(*, path: str) -> str:
    """The destination of a block copy: a qcow2 file that already exists (made in the pool first)."""
    disk = ElementTree.Element("disk", type="file")
    ElementTree.SubElement(disk, "source", file=path)
    ElementTree.SubElement(disk, "driver", type="qcow2")
    return ElementTree.tostring(disk, encoding="unicode")


def volume_serial(name: str) -> str:
    """The disk serial of a volume (virtio-blk keeps 20 characters): the hex of its uuid, without the prefix."""
    return name.rsplit("-vol-", 1)[-1].replace("-", "")[:20]


def pool_xml(*, path: str, name: str = POOL_NAME) -> str:
    pool = ElementTree.Element("pool", type="dir")
    ElementTree.SubElement(pool, "name").text = name
    target = ElementTree.SubElement(pool, "target")
    ElementTree.SubElement(target, "path").text = path
    return ElementTree.tostring(pool, encoding="unicode")


# --- networks -------------------------------------------------------------------------------------------------------
def network_xml(spec: NetworkSpec) -> str:
    """An isolated network: no <forward>, so libvirt routes nothing off the host; the host has the gateway address.

    DHCP answers only the listed MACs (no range), so a guest gets exactly the address Hangar allocated, and DNS is
    off (dnsmasq would forward queries off the host).
    """
    cidr = ipaddress.IPv4Network(spec.cidr)
    gateway = ipaddress.IPv4Address(spec.gateway_ip)
    if gateway not in cidr:
        raise ValueError(f"gateway {gateway} is not in {cidr}")
    network = ElementTree.Element("network")
    ElementTree.SubElement(network, "name").text = network_name(spec.id)
    ElementTree.SubElement(network, "bridge", name=bridge_name(spec.id), stp="on", delay="0")
    ElementTree.SubElement(network, "dns", enable="no")
    ip = ElementTree.SubElement(network, "ip", address=str(gateway), prefix=str(cidr.prefixlen))
    dhcp = ElementTree.SubElement(ip, "dhcp")
    for host in spec.dhcp_hosts:
        dhcp.append(ElementTree.fromstring(dhcp_host_xml(host)))
    ElementTree.indent(network)
    return ElementTree.tostring(network, encoding="unicode")


def dhcp_host_xml(host: DhcpHost) -> str:
    attributes = {"mac": host.mac.lower(), "ip": str(ipaddress.IPv4Address(host.ip))}
    if HOSTNAME_LABEL.match(host.hostname or ""):
        attributes["name"] = host.hostname
    return ElementTree.tostring(ElementTree.Element("host", attributes), encoding="unicode")


def dhcp_hosts_of(xml: str) -> dict[str, str]:
    """The DHCP host entries of a network definition: MAC → the <host> element as XML."""
    hosts = ElementTree.fromstring(xml).findall("ip/dhcp/host")
    return {host.get("mac", "").lower(): ElementTree.tostring(host, encoding="unicode").strip() for host in hosts}


# --- firewalls ------------------------------------------------------------------------------------------------------
def nwfilter_xml(uuid: str, rules: tuple[FirewallRuleSpec, ...], *, filter_uuid: str = "") -> str:
    """The domain's nwfilter: DHCP always, then the rules (accept), then drop everything else in both directions.

    nwfilter rules are stateful (replies to accepted traffic pass the other way), and "in" is traffic to the guest,
    so an inbound rule matches the remote address as source and the guest's port as destination.
    """
    root = ElementTree.Element("filter", name=nwfilter_name(uuid), chain="root")
    if filter_uuid:
        ElementTree.SubElement(root, "uuid").text = filter_uuid
    dhcp_out = ElementTree.SubElement(root, "rule", action="accept", direction="out", priority="100")
    ElementTree.SubElement(dhcp_out, "udp", srcportstart="68", dstportstart="67")
    dhcp_in = ElementTree.SubElement(root, "rule", action="accept", direction="in", priority="100")
    ElementTree.SubElement(dhcp_in, "udp", srcportstart="67", dstportstart="68")
    for index, rule in enumerate(rules):
        element = ElementTree.SubElement(
            root, "rule", action="accept", direction=_direction(rule.direction), priority=str(200 + index)
        )
        ElementTree.SubElement(element, _protocol(rule.protocol), _match(rule))
    for direction in ("in", "out"):
        drop = ElementTree.SubElement(root, "rule", action="drop", direction=direction, priority="900")
        ElementTree.SubElement(drop, "all")
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode")


def _direction(direction: str) -> str:
    if direction not in ("in", "out"):
        raise ValueError(f"firewall direction must be in or out, not {direction!r}")
    return direction


def _protocol(protocol: str) -> str:
    if protocol not in ("tcp", "udp", "icmp", "any"):
        raise ValueError(f"firewall protocol must be tcp, udp, icmp or any, not {protocol!r}")
    return "all" if protocol == "any" else protocol


def _match(rule: FirewallRuleSpec) -> dict[str, str]:
    """The attributes of a rule's protocol element: the remote network, and the guest's (in) or remote (out) ports."""
    attributes: dict[str, str] = {}
    network = ipaddress.IPv4Network(rule.cidr, strict=False)
    if network.prefixlen:
        side = "src" if rule.direction == "in" else "dst"
        attributes[f"{side}ipaddr"] = str(network.network_address)
        attributes[f"{side}ipmask"] = str(network.prefixlen)
    if rule.protocol in ("tcp", "udp") and rule.port_min is not None:
        port_max = rule.port_max if rule.port_max is not None else rule.port_min
        if not 1 <= rule.port_min <= port_max <= 65535:
            raise ValueError(f"bad port range {rule.port_min}-{port_max}")
        attributes["dstportstart"] = str(rule.port_min)
        if port_max != rule.port_min:
            attributes["dstportend"] = str(port_max)
    return attributes


# --- 1:1 NAT --------------------------------------------------------------------------------------------------------
def nat_ruleset(mappings: tuple[NatMapping, ...]) -> str:
    """An `nft -f` script that replaces the table `ip hangar` with exactly `mappings`, in one transaction.

    prerouting: traffic arriving for a public address goes to the guest; output: the same for the host's own
    connections (which then leave from the gateway address, see HOST_ORIGINATED_MARK); postrouting: what a guest
    sends beyond the private ranges leaves as its public address.
    """
    pairs = sorted({(ipaddress.IPv4Address(m.public_ip), ipaddress.IPv4Address(m.private_ip)) for m in mappings})
    publics = [public for public, _ in pairs]
    if len(set(publics)) != len(publics):
        raise ValueError("a public address can be mapped to one private address only")
    mark = f"0x{HOST_ORIGINATED_MARK:08x}"
    private_ranges = ", ".join(PRIVATE_RANGES)
    prerouting = [f"\t\tip daddr {public} dnat to {private}" for public, private in pairs]
    output = [f"\t\tip daddr {public} meta mark set {mark} dnat to {private}" for public, private in pairs]
    postrouting = [f"\t\tmeta mark {mark} masquerade"] + [
        f"\t\tip saddr {private} ip daddr != {{ {private_ranges} }} snat to {public}" for public, private in pairs
    ]
    return "\n".join(
        [
            # Declaring the table first makes the delete harmless when it does not exist yet.
            f"table ip {NAT_TABLE} {{}}",
            f"delete table ip {NAT_TABLE}",
            f"table ip {NAT_TABLE} {{",
            "\tchain prerouting {",
            "\t\ttype nat hook prerouting priority dstnat; policy accept;",
            *prerouting,
            "\t}",
            "\tchain output {",
            "\t\ttype nat hook output priority -100; policy accept;",
            *output,
            "\t}",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            *postrouting,
            "\t}",
            "}",
            "",
        ]
    )
