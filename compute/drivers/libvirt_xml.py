"""XML that the libvirt driver hands to libvirt: domain, volume and pool definitions (pure functions, no libvirt).

Kept apart from compute/drivers/libvirt.py so the definitions can be read, and tested, on their own.
"""

from __future__ import annotations

from xml.etree import ElementTree

from compute.drivers.base import DomainSpec

DOMAIN_PREFIX = "hangar-"
POOL_NAME = "hangar"
METADATA_NAMESPACE = "https://hangar.invalid/xmlns/libvirt/1"


def domain_name(uuid: str) -> str:
    return f"{DOMAIN_PREFIX}{uuid}"


def domain_xml(
    spec: DomainSpec,
    *,
    domain_type: str,
    disk_path: str,
    console_path: str,
    network: str = "",
    arch: str = "x86_64",
) -> str:
    """The persistent definition of one instance's domain. `network` empty → user-mode networking."""
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


def pool_xml(*, path: str, name: str = POOL_NAME) -> str:
    pool = ElementTree.Element("pool", type="dir")
    ElementTree.SubElement(pool, "name").text = name
    target = ElementTree.SubElement(pool, "target")
    ElementTree.SubElement(target, "path").text = path
    return ElementTree.tostring(pool, encoding="unicode")
