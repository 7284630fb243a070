"""The libvirt driver against libvirt's in-process test:///default driver (no daemon, state lives per connection)."""

import shutil
import subprocess
import uuid
from xml.etree import ElementTree

import pytest

from compute.drivers import driver_for, libvirt_xml
from compute.drivers.base import (
    CloudInitSeed,
    DhcpHost,
    DomainNotFound,
    DomainSpec,
    FirewallRuleSpec,
    ImageSource,
    InterfaceCounters,
    NatMapping,
    NetworkSpec,
    NicSpec,
    PermanentDriverError,
    PowerState,
    TransientDriverError,
)
from compute.models import Host

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (pip install -e '.[libvirt]')")
libvirt_driver = pytest.importorskip("compute.drivers.libvirt")

TEST_URI = "test:///default"
needs_genisoimage = pytest.mark.skipif(
    shutil.which("genisoimage") is None, reason="genisoimage is not installed (apt-get install genisoimage)"
)


@pytest.fixture(autouse=True)
def _fresh_test_hypervisor(settings, tmp_path):
    settings.HANGAR_IMAGE_DIR = tmp_path / "images"
    settings.LIBVIRT_SHUTDOWN_TIMEOUT = 5
    yield
    # The test driver forgets its domains and pools when its last connection closes: every test starts clean.
    libvirt_driver.close_connections()


def make_host(uri: str = TEST_URI) -> Host:
    return Host(name="kvm-1", driver="libvirt", uri=uri, vcpus=8, ram_mib=16384, disk_gib=500)


def make_spec(**overrides) -> DomainSpec:
    values = {
        "uuid": str(uuid.uuid4()),
        "name": "web-1",
        "vcpus": 2,
        "ram_mib": 256,
        "disk_gib": 2,
        "image": ImageSource(
            disk_path="/srv/images/demo/disk.raw",
            disk_format="raw",
            kernel_path="/srv/images/demo/vmlinuz",
            initrd_path="/srv/images/demo/initrd.img",
            kernel_cmdline="console=ttyS0 quiet",
        ),
        "metadata": {"tenant": "acme"},
    }
    values.update(overrides)
    return DomainSpec(**values)


def raw_connection():
    return libvirt_driver.connection(TEST_URI)


def libvirt_error(code: int, domain: int = 0, message: str = "boom") -> "libvirt.libvirtError":
    error = libvirt.libvirtError(message)
    error.err = (code, domain, message, 2, None, None, None, 0, 0)
    return error


# --- XML ----------------------------------------------------------------------------------------------------------
def test_domain_xml_describes_a_software_emulated_kernel_boot_guest():
    spec = make_spec()

    root = ElementTree.fromstring(
        libvirt_xml.domain_xml(
            spec, domain_type="qemu", disk_path="/pool/x.qcow2", console_path="/pool/x.console.log", network=""
        )
    )

    assert root.get("type") == "qemu"
    assert root.findtext("name") == f"hangar-{spec.uuid}"
    assert root.findtext("uuid") == spec.uuid
    assert root.findtext("title") == "web-1"
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "256"
    assert root.findtext("vcpu") == "2"
    assert root.findtext("os/kernel") == "/srv/images/demo/vmlinuz"
    assert root.findtext("os/initrd") == "/srv/images/demo/initrd.img"
    assert root.findtext("os/cmdline") == "console=ttyS0 quiet"
    assert root.find("features/acpi") is not None
    disk = root.find("devices/disk")
    assert disk.find("driver").get("type") == "qcow2"
    assert disk.find("source").get("file") == "/pool/x.qcow2"
    assert root.find("devices/serial/log").get("file") == "/pool/x.console.log"
    assert root.find("devices/interface").get("type") == "user"


def test_domain_xml_boots_from_disk_and_joins_a_host_network():
    spec = make_spec(image=ImageSource(disk_path="/srv/images/debian.qcow2", disk_format="qcow2"))

    root = ElementTree.fromstring(
        libvirt_xml.domain_xml(spec, domain_type="kvm", disk_path="/p/d.qcow2", console_path="/p/c", network="lan")
    )

    assert root.get("type") == "kvm"
    assert root.find("os/kernel") is None
    assert root.find("os/boot").get("dev") == "hd"
    interface = root.find("devices/interface")
    assert interface.get("type") == "network" and interface.find("source").get("network") == "lan"


def test_disk_volume_is_a_qcow2_overlay_on_the_base_disk():
    root = ElementTree.fromstring(
        libvirt_xml.disk_volume_xml(name="u.qcow2", capacity_gib=3, base_path="/img/base.raw", base_format="raw")
    )

    assert root.find("capacity").get("unit") == "G" and root.findtext("capacity") == "3"
    assert root.find("target/format").get("type") == "qcow2"
    assert root.findtext("backingStore/path") == "/img/base.raw"
    assert root.find("backingStore/format").get("type") == "raw"


def test_blank_disk_has_no_backing_store():
    root = ElementTree.fromstring(libvirt_xml.disk_volume_xml(name="u.qcow2", capacity_gib=1))

    assert root.find("backingStore") is None


# --- lifecycle on test:///default -----------------------------------------------------------------------------------
def test_driver_is_chosen_per_host():
    assert isinstance(driver_for(make_host()), libvirt_driver.LibvirtDriver)


def test_create_defines_starts_and_gives_the_domain_an_overlay_disk():
    driver = driver_for(make_host())
    spec = make_spec()

    info = driver.create(spec)

    assert info.uuid == spec.uuid and info.state == PowerState.RUNNING
    domain = raw_connection().lookupByUUIDString(spec.uuid)
    assert domain.name() == f"hangar-{spec.uuid}" and domain.isPersistent()
    volume = raw_connection().storagePoolLookupByName("hangar").storageVolLookupByName(f"{spec.uuid}.qcow2")
    assert volume.info()[1] == 2 * 1024**3


def test_create_is_idempotent_an_existing_domain_is_adopted():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)
    before = len(raw_connection().listAllDomains(0))

    again = driver.create(spec)

    assert again.state == PowerState.RUNNING
    assert len(raw_connection().listAllDomains(0)) == before
    assert [d.uuid for d in driver.list_domains()] == [spec.uuid]


def test_create_starts_a_defined_but_stopped_domain():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)
    driver.stop(spec.uuid, force=True)

    assert driver.create(spec).state == PowerState.RUNNING


def test_destroy_removes_domain_and_disk_and_is_idempotent():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)

    driver.destroy(spec.uuid)
    driver.destroy(spec.uuid)

    assert driver.list_domains() == []
    pool = raw_connection().storagePoolLookupByName("hangar")
    assert f"{spec.uuid}.qcow2" not in pool.listVolumes()
    with pytest.raises(DomainNotFound):
        driver.state(spec.uuid)


def test_destroy_of_a_domain_that_never_existed_succeeds():
    driver_for(make_host()).destroy(str(uuid.uuid4()))


def test_stop_start_and_reboot_report_power_states():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)

    assert driver.stop(spec.uuid).state == PowerState.SHUTOFF
    assert driver.stop(spec.uuid).state == PowerState.SHUTOFF  # already off: nothing to do
    assert driver.start(spec.uuid).state == PowerState.RUNNING
    assert driver.start(spec.uuid).state == PowerState.RUNNING
    assert driver.reboot(spec.uuid).state == PowerState.RUNNING
    assert driver.stop(spec.uuid, force=True).state == PowerState.SHUTOFF
    assert driver.state(spec.uuid).state == PowerState.SHUTOFF


def test_list_domains_shows_only_hangar_domains():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)

    # test:///default always has a domain called "test": not ours.
    assert "test" in [domain.name() for domain in raw_connection().listAllDomains(0)]
    assert [(d.uuid, d.state) for d in driver.list_domains()] == [(spec.uuid, PowerState.RUNNING)]


def test_a_domain_destroyed_behind_our_back_is_not_found():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)
    domain = raw_connection().lookupByUUIDString(spec.uuid)
    domain.destroy()
    domain.undefine()

    assert driver.list_domains() == []
    with pytest.raises(DomainNotFound):
        driver.state(spec.uuid)
    with pytest.raises(DomainNotFound):
        driver.start(spec.uuid)


def test_resize_refuses_a_running_domain():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)

    with pytest.raises(PermanentDriverError, match="must be stopped"):
        driver.resize(spec.uuid, vcpus=4, ram_mib=512, disk_gib=2)


def test_resize_sets_vcpus_and_memory_of_a_stopped_domain():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)
    driver.stop(spec.uuid)

    info = driver.resize(spec.uuid, vcpus=4, ram_mib=512, disk_gib=2)

    assert info.state == PowerState.SHUTOFF
    root = ElementTree.fromstring(raw_connection().lookupByUUIDString(spec.uuid).XMLDesc(0))
    assert root.findtext("vcpu") == "4"
    assert int(root.findtext("memory")) == 512 * 1024  # libvirt reports KiB


def test_growing_the_disk_where_the_hypervisor_cannot_is_a_permanent_error():
    # The test driver has no volume resize (qemu:///system runs qemu-img resize: see the integration test).
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)
    driver.stop(spec.uuid)

    with pytest.raises(PermanentDriverError, match="resize"):
        driver.resize(spec.uuid, vcpus=2, ram_mib=256, disk_gib=5)


def test_host_capacity_comes_from_libvirt():
    capacity = driver_for(make_host()).host_capacity()

    # test:///default describes a 16-CPU, 3 GiB machine; disk is the hangar pool's size.
    assert capacity.vcpus == 16
    assert capacity.ram_mib == 3072
    assert capacity.disk_gib > 0


def test_console_output_is_empty_when_the_hypervisor_has_no_log():
    driver = driver_for(make_host())
    spec = make_spec()
    driver.create(spec)

    assert driver.console_output(spec.uuid) == ""


def test_console_text_keeps_the_last_lines_without_escape_sequences():
    data = b"boot\r\n\x1b[0mline 1\nline 2\nline 3\n"

    assert libvirt_driver._last_lines(data, 2) == "line 2\nline 3"
    assert libvirt_driver._last_lines(data, 10) == "boot\nline 1\nline 2\nline 3"
    assert libvirt_driver._last_lines(b"", 10) == ""


def test_missing_image_on_a_local_host_is_a_permanent_error(tmp_path):
    driver = driver_for(make_host("qemu:///system"))
    spec = make_spec(image=ImageSource(disk_path=str(tmp_path / "nope.raw")))

    with pytest.raises(PermanentDriverError, match="does not exist"):
        driver._check_image(spec)


# --- errors and connections -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "domain", "message", "expected"),
    [
        (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_FROM_QEMU, "Domain not found", DomainNotFound),
        (
            libvirt.VIR_ERR_SYSTEM_ERROR,
            libvirt.VIR_FROM_RPC,
            "Cannot recv data: Connection reset",
            TransientDriverError,
        ),
        (
            libvirt.VIR_ERR_OPERATION_TIMEOUT,
            libvirt.VIR_FROM_QEMU,
            "cannot acquire state change lock",
            TransientDriverError,
        ),
        (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_FROM_NONE, "no connection driver", TransientDriverError),
        (libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_RPC, "client socket is closed", TransientDriverError),
        (
            libvirt.VIR_ERR_INTERNAL_ERROR,
            libvirt.VIR_FROM_QEMU,
            "process exited while connecting",
            PermanentDriverError,
        ),
        (libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_FROM_DOMAIN, "(domain_definition):1: bad", PermanentDriverError),
        (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_FROM_STORAGE, "no storage vol", PermanentDriverError),
        (libvirt.VIR_ERR_CONFIG_UNSUPPORTED, libvirt.VIR_FROM_QEMU, "unsupported", PermanentDriverError),
    ],
)
def test_errors_are_classified(code, domain, message, expected):
    error = libvirt_driver.classify(libvirt_error(code, domain, message), action="stop")

    assert type(error) is expected
    assert str(error) == f"stop: {message}"


def test_invalid_xml_from_libvirt_is_permanent():
    with pytest.raises(libvirt.libvirtError) as caught:
        raw_connection().defineXML("<domain><oops")

    assert isinstance(libvirt_driver.classify(caught.value), PermanentDriverError)


def test_an_unreachable_daemon_is_transient(tmp_path):
    driver = driver_for(make_host(f"qemu+unix:///system?socket={tmp_path}/no-such.sock"))

    with pytest.raises(TransientDriverError, match="cannot connect"):
        driver.list_domains()


def test_connections_are_reused_per_uri():
    first = libvirt_driver.connection(TEST_URI)

    assert libvirt_driver.connection(TEST_URI) is first


def test_a_closed_connection_is_reopened():
    first = libvirt_driver.connection(TEST_URI)
    first.close()  # what a daemon restart looks like from here: the handle is dead

    second = libvirt_driver.connection(TEST_URI)

    assert second is not first and second.isAlive()
    assert driver_for(make_host()).list_domains() == []


def test_a_call_that_loses_the_connection_reconnects_once_and_succeeds():
    driver = driver_for(make_host())
    calls = []

    def operation(conn):
        calls.append(conn)
        if len(calls) == 1:
            raise libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, "Cannot recv data")
        return "ok"

    assert driver._call("list", operation) == "ok"
    assert len(calls) == 2 and calls[0] is not calls[1]


def test_a_connection_that_stays_broken_is_transient():
    driver = driver_for(make_host())

    def operation(conn):
        raise libvirt_error(libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, "Cannot recv data")

    with pytest.raises(TransientDriverError, match="Cannot recv data"):
        driver._call("list", operation)


# --- the reconciler against libvirt -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_reconciler_sees_what_happened_on_a_libvirt_host_behind_our_back(nwfilters, uploads):
    from compute import reconciler
    from compute.services.operations import domain_spec
    from tests.factories.compute import HostFactory, InstanceFactory

    host = HostFactory(name="kvm-test", driver="libvirt", uri=TEST_URI)
    vanished = InstanceFactory(host=host, state="running")
    powered_off = InstanceFactory(host=host, state="running")
    driver = driver_for(host)
    driver.create(domain_spec(vanished))
    driver.create(domain_spec(powered_off))
    stray = make_spec()
    driver.create(stray)  # a hangar-* domain that no instance owns
    domain = raw_connection().lookupByUUIDString(str(vanished.pk))
    domain.destroy()
    domain.undefine()
    raw_connection().lookupByUUIDString(str(powered_off.pk)).destroy()

    report = reconciler.reconcile()

    vanished.refresh_from_db()
    assert report.vanished == [str(vanished.pk)] and vanished.state == "error"
    assert report.power_synced == [str(powered_off.pk)]
    assert report.orphans == [stray.uuid]
    assert report.unreachable_hosts == []


def test_a_machine_without_libvirt_python_fails_libvirt_hosts_with_a_reason(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "libvirt", None)  # what `import libvirt` sees where the binding is missing
    monkeypatch.delitem(sys.modules, "compute.drivers.libvirt")

    with pytest.raises(PermanentDriverError, match=r"pip install -e '\.\[libvirt\]'"):
        driver_for(make_host())


# --- networking: XML and rule sets as pure functions ------------------------------------------------------------------
NETWORK_ID = "0a1b2c3d-4e5f-4a6b-8c7d-0123456789ab"


def make_network(*hosts: DhcpHost, cidr: str = "10.20.0.0/24", gateway: str = "10.20.0.1") -> NetworkSpec:
    return NetworkSpec(id=NETWORK_ID, name="default", cidr=cidr, gateway_ip=gateway, dhcp_hosts=hosts)


SSH_IN = FirewallRuleSpec(direction="in", protocol="tcp", port_min=22, port_max=22, cidr="0.0.0.0/0")
ALL_OUT = FirewallRuleSpec(direction="out", protocol="any", port_min=None, port_max=None, cidr="0.0.0.0/0")


def test_a_hangar_network_is_isolated_with_fixed_leases_and_no_dns():
    root = ElementTree.fromstring(
        libvirt_xml.network_xml(make_network(DhcpHost(mac="52:54:00:AA:00:01", ip="10.20.0.5", hostname="web-1")))
    )

    assert root.findtext("name") == f"hangar-net-{NETWORK_ID}"
    assert root.find("forward") is None  # nothing is routed off the host
    bridge = root.find("bridge").get("name")
    assert bridge == "hgn-0a1b2c3d4e5" and len(bridge) <= 15
    assert root.find("dns").get("enable") == "no"
    assert root.find("ip").attrib == {"address": "10.20.0.1", "prefix": "24"}
    assert root.find("ip/dhcp/range") is None  # only the MACs Hangar knows get an address
    assert [host.attrib for host in root.findall("ip/dhcp/host")] == [
        {"mac": "52:54:00:aa:00:01", "ip": "10.20.0.5", "name": "web-1"}
    ]


def test_a_network_whose_gateway_is_outside_it_is_refused():
    with pytest.raises(ValueError, match=r"not in 10\.20\.0\.0/24"):
        libvirt_xml.network_xml(make_network(gateway="10.30.0.1"))


def test_a_dhcp_host_whose_name_dnsmasq_would_reject_goes_without_a_name():
    xml = libvirt_xml.dhcp_host_xml(DhcpHost(mac="52:54:00:00:00:02", ip="10.20.0.6", hostname="web 1; rm"))

    assert ElementTree.fromstring(xml).attrib == {"mac": "52:54:00:00:00:02", "ip": "10.20.0.6"}


def test_the_firewall_is_an_nwfilter_that_allows_the_rules_and_drops_the_rest():
    rules = (
        SSH_IN,
        FirewallRuleSpec(direction="in", protocol="udp", port_min=6000, port_max=6010, cidr="192.168.1.0/24"),
        FirewallRuleSpec(direction="in", protocol="icmp", port_min=None, port_max=None, cidr="10.0.0.0/8"),
        FirewallRuleSpec(direction="out", protocol="tcp", port_min=443, port_max=None, cidr="198.51.100.0/24"),
        ALL_OUT,
    )

    root = ElementTree.fromstring(libvirt_xml.nwfilter_xml("u-1", rules, filter_uuid="5a1f0b5e-0000-4000-8000-1"))

    assert root.get("name") == "hangar-fw-u-1" and root.get("chain") == "root"
    assert root.findtext("uuid") == "5a1f0b5e-0000-4000-8000-1"
    accepted = [(rule.get("direction"), rule[0].tag, rule[0].attrib) for rule in root.findall("rule[@action='accept']")]
    assert accepted == [
        ("out", "udp", {"srcportstart": "68", "dstportstart": "67"}),  # DHCP, whatever the rules say
        ("in", "udp", {"srcportstart": "67", "dstportstart": "68"}),
        ("in", "tcp", {"dstportstart": "22"}),
        ("in", "udp", {"srcipaddr": "192.168.1.0", "srcipmask": "24", "dstportstart": "6000", "dstportend": "6010"}),
        ("in", "icmp", {"srcipaddr": "10.0.0.0", "srcipmask": "8"}),
        ("out", "tcp", {"dstipaddr": "198.51.100.0", "dstipmask": "24", "dstportstart": "443"}),
        ("out", "all", {}),
    ]
    dropped = [(rule.get("direction"), rule[0].tag) for rule in root.findall("rule[@action='drop']")]
    assert dropped == [("in", "all"), ("out", "all")]
    priorities = [int(rule.get("priority")) for rule in root.findall("rule")]
    assert priorities == sorted(priorities)  # the drops come last


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (FirewallRuleSpec("in", "tcp", 0, 22, "0.0.0.0/0"), "bad port range"),
        (FirewallRuleSpec("in", "tcp", 80, 22, "0.0.0.0/0"), "bad port range"),
        (FirewallRuleSpec("in", "udp", 1, 65536, "0.0.0.0/0"), "bad port range"),
        (FirewallRuleSpec("in", "gre", None, None, "0.0.0.0/0"), "protocol"),
        (FirewallRuleSpec("sideways", "tcp", 22, 22, "0.0.0.0/0"), "direction"),
        (FirewallRuleSpec("in", "tcp", 22, 22, "10.0.0.300/8"), "not permitted"),
    ],
)
def test_a_rule_nwfilter_cannot_express_is_refused(rule, message):
    with pytest.raises(ValueError, match=message):
        libvirt_xml.nwfilter_xml("u-1", (rule,))


def test_the_nat_rule_set_replaces_the_hangar_table_in_one_transaction():
    ruleset = libvirt_xml.nat_ruleset(
        (NatMapping(public_ip="203.0.113.6", private_ip="10.20.0.6"), NatMapping("203.0.113.5", "10.20.0.5"))
    )
    lines = [line.strip() for line in ruleset.splitlines()]

    # Declaring the table before deleting it makes the first apply on a host work too.
    assert lines[:3] == ["table ip hangar {}", "delete table ip hangar", "table ip hangar {"]
    assert [line for line in lines if "dnat to" in line] == [
        "ip daddr 203.0.113.5 dnat to 10.20.0.5",
        "ip daddr 203.0.113.6 dnat to 10.20.0.6",
        "ip daddr 203.0.113.5 meta mark set 0x48414e47 dnat to 10.20.0.5",
        "ip daddr 203.0.113.6 meta mark set 0x48414e47 dnat to 10.20.0.6",
    ]
    assert "meta mark 0x48414e47 masquerade" in lines
    assert "ip saddr 10.20.0.5 ip daddr != { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 } snat to 203.0.113.5" in lines


def test_an_empty_nat_set_leaves_an_empty_table():
    lines = libvirt_xml.nat_ruleset(()).splitlines()

    assert not [line for line in lines if "dnat" in line or "snat" in line]
    assert "delete table ip hangar" in lines


@pytest.mark.parametrize(
    "mappings",
    [
        (NatMapping("203.0.113.5", "10.20.0.5"), NatMapping("203.0.113.5", "10.20.0.6")),
        (NatMapping("203.0.113.5; flush ruleset", "10.20.0.5"),),
    ],
)
def test_a_nat_set_nft_should_not_see_is_refused(mappings):
    with pytest.raises(ValueError):
        libvirt_xml.nat_ruleset(mappings)


def test_domain_xml_puts_nics_on_hangar_networks_with_their_macs_filter_and_seed():
    spec = make_spec()
    nics = (
        libvirt_xml.Nic(network="hangar-net-a", mac="52:54:00:00:00:0a"),
        libvirt_xml.Nic(network="hangar-net-b", mac="52:54:00:00:00:0b"),
    )

    root = ElementTree.fromstring(
        libvirt_xml.domain_xml(
            spec,
            domain_type="qemu",
            disk_path="/p/d.qcow2",
            console_path="/p/c",
            network="default",
            nics=nics,
            firewall="hangar-fw-x",
            seed_path="/p/x.seed.iso",
        )
    )

    interfaces = root.findall("devices/interface")
    assert [
        (i.get("type"), i.find("source").get("network"), i.find("mac").get("address"), i.find("model").get("type"))
        for i in interfaces
    ] == [
        ("network", "hangar-net-a", "52:54:00:00:00:0a", "virtio"),
        ("network", "hangar-net-b", "52:54:00:00:00:0b", "virtio"),
    ]
    assert {i.find("filterref").get("filter") for i in interfaces} == {"hangar-fw-x"}
    cdrom = root.find("devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("file") == "/p/x.seed.iso"
    assert cdrom.find("target").attrib == {"dev": "sda", "bus": "scsi"}
    assert cdrom.find("readonly") is not None
    assert root.find("devices/controller[@type='scsi']").get("model") == "virtio-scsi"


@needs_genisoimage
def test_seed_iso_is_labelled_cidata_and_holds_the_three_documents():
    seed = CloudInitSeed(meta_data="instance-id: i-1\n", user_data="#cloud-config\n", network_config="version: 2\n")

    image = libvirt_driver.build_seed_iso(seed)

    # ISO 9660: the primary volume descriptor is sector 16; its volume identifier starts at byte 40.
    assert image[16 * 2048 + 1 : 16 * 2048 + 6] == b"CD001"
    assert image[16 * 2048 + 40 : 16 * 2048 + 72].rstrip() == b"cidata"
    for name in (b"meta-data", b"user-data", b"network-config"):
        assert name in image  # Rock Ridge keeps the names cloud-init looks for


# --- networking on test:///default ------------------------------------------------------------------------------------
class FakeNWFilters:
    """test:///default has no nwfilter driver: the connection's four nwfilter calls, kept in memory."""

    def __init__(self):
        self.filters: dict[str, str] = {}

    def install(self, conn) -> None:
        conn.nwfilterDefineXML = self.define
        conn.nwfilterLookupByName = self.lookup

    def define(self, xml: str):
        root = ElementTree.fromstring(xml)
        self.filters[root.get("name")] = xml
        return self.lookup(root.get("name"))

    def lookup(self, name: str):
        if name not in self.filters:
            raise libvirt_error(libvirt.VIR_ERR_NO_NWFILTER, libvirt.VIR_FROM_NWFILTER, f"no nwfilter {name}")
        filters = self.filters

        class Filter:
            def UUIDString(self):
                return "5a1f0b5e-0000-4000-8000-000000000001"

            def undefine(self):
                del filters[name]

        return Filter()

    def rules(self, name: str) -> list[tuple[str, str, str]]:
        root = ElementTree.fromstring(self.filters[name])
        return [(rule.get("action"), rule.get("direction"), rule[0].tag) for rule in root.findall("rule")]


@pytest.fixture
def nwfilters():
    fake = FakeNWFilters()
    fake.install(raw_connection())
    return fake


@pytest.fixture
def uploads(monkeypatch):
    """test:///default cannot upload into a volume: what the driver uploads, by volume name."""
    uploaded: dict[str, bytes] = {}
    monkeypatch.setattr(
        libvirt_driver.LibvirtDriver,
        "_upload",
        staticmethod(lambda conn, vol, data: uploaded.update({vol.name(): data})),
    )
    return uploaded


def dhcp_hosts(network_id: str = NETWORK_ID) -> list[dict]:
    network = raw_connection().networkLookupByName(f"hangar-net-{network_id}")
    return [host.attrib for host in ElementTree.fromstring(network.XMLDesc(0)).findall("ip/dhcp/host")]


def test_network_ensure_defines_starts_and_is_idempotent():
    driver = driver_for(make_host())
    spec = make_network(DhcpHost(mac="52:54:00:00:00:01", ip="10.20.0.5", hostname="web-1"))

    driver.network_ensure(spec)
    driver.network_ensure(spec)

    network = raw_connection().networkLookupByName(f"hangar-net-{NETWORK_ID}")
    assert network.isActive() and network.isPersistent() and network.autostart()
    assert [n.name() for n in raw_connection().listAllNetworks(0)].count(f"hangar-net-{NETWORK_ID}") == 1
    assert dhcp_hosts() == [{"mac": "52:54:00:00:00:01", "name": "web-1", "ip": "10.20.0.5"}]


def test_network_ensure_makes_the_dhcp_entries_exactly_the_spec_live():
    driver = driver_for(make_host())
    first = DhcpHost(mac="52:54:00:00:00:01", ip="10.20.0.5", hostname="web-1")
    second = DhcpHost(mac="52:54:00:00:00:02", ip="10.20.0.6", hostname="web-2")
    driver.network_ensure(make_network(first, second))

    moved = DhcpHost(mac="52:54:00:00:00:02", ip="10.20.0.9", hostname="web-2")
    third = DhcpHost(mac="52:54:00:00:00:03", ip="10.20.0.7", hostname="db-1")
    driver.network_ensure(make_network(moved, third))

    assert sorted((h["mac"], h["ip"]) for h in dhcp_hosts()) == [
        ("52:54:00:00:00:02", "10.20.0.9"),
        ("52:54:00:00:00:03", "10.20.0.7"),
    ]


def test_network_leases_add_makes_the_network_and_adds_to_its_entries_live():
    """A build's call: the network is made if missing; its machine's entry replaces one with its MAC or address
    (a deletion not yet synced), every other entry stays."""
    driver = driver_for(make_host())
    first = DhcpHost(mac="52:54:00:00:00:01", ip="10.20.0.5", hostname="web-1")
    driver.network_leases_add(make_network(first))
    stale = DhcpHost(mac="52:54:00:00:00:02", ip="10.20.0.6", hostname="gone")
    moved = DhcpHost(mac="52:54:00:00:00:03", ip="10.20.0.8", hostname="db-1")
    driver.network_leases_add(make_network(stale))
    driver.network_leases_add(make_network(moved))

    driver.network_leases_add(make_network(DhcpHost(mac="52:54:00:00:00:04", ip="10.20.0.6", hostname="web-2")))
    driver.network_leases_add(make_network(DhcpHost(mac="52:54:00:00:00:03", ip="10.20.0.9", hostname="db-1")))
    driver.network_leases_add(make_network(first))  # again: nothing changes

    network = raw_connection().networkLookupByName(f"hangar-net-{NETWORK_ID}")
    assert network.isActive() and network.isPersistent() and network.autostart()
    assert sorted((h["mac"], h["ip"], h.get("name")) for h in dhcp_hosts()) == [
        ("52:54:00:00:00:01", "10.20.0.5", "web-1"),
        ("52:54:00:00:00:03", "10.20.0.9", "db-1"),
        ("52:54:00:00:00:04", "10.20.0.6", "web-2"),
    ]


def test_network_ensure_starts_a_network_that_is_down():
    driver = driver_for(make_host())
    driver.network_ensure(make_network())
    raw_connection().networkLookupByName(f"hangar-net-{NETWORK_ID}").destroy()

    driver.network_ensure(make_network())

    assert raw_connection().networkLookupByName(f"hangar-net-{NETWORK_ID}").isActive()


def test_a_bad_network_spec_is_a_permanent_error():
    with pytest.raises(PermanentDriverError, match="not in"):
        driver_for(make_host()).network_ensure(make_network(gateway="192.168.0.1"))


def test_network_remove_removes_it_and_is_idempotent():
    driver = driver_for(make_host())
    driver.network_ensure(make_network())

    driver.network_remove(NETWORK_ID)
    driver.network_remove(NETWORK_ID)

    assert f"hangar-net-{NETWORK_ID}" not in [n.name() for n in raw_connection().listAllNetworks(0)]


def networked_spec(**overrides) -> DomainSpec:
    values = {
        "nics": (NicSpec(mac="52:54:00:00:00:01", network_id=NETWORK_ID, ip="10.20.0.5", prefix=24),),
        "seed": CloudInitSeed(meta_data="instance-id: x\n", user_data="#cloud-config\n", network_config=""),
        "firewall": (SSH_IN, ALL_OUT),
    }
    values.update(overrides)
    return make_spec(**values)


def networked_domain(**overrides) -> tuple:
    """A running domain on the test network with its fixed lease, a firewall (and a seed unless seed=None)."""
    driver = driver_for(make_host())
    driver.network_ensure(make_network(DhcpHost(mac="52:54:00:00:00:01", ip="10.20.0.5", hostname="web-1")))
    spec = networked_spec(**overrides)
    driver.create(spec)
    return driver, spec


def test_create_puts_the_nics_on_the_hangar_network_behind_the_domains_firewall(nwfilters, uploads):
    _, spec = networked_domain(seed=None)

    root = ElementTree.fromstring(raw_connection().lookupByUUIDString(spec.uuid).XMLDesc(0))
    interface = root.find("devices/interface")
    assert interface.find("source").get("network") == f"hangar-net-{NETWORK_ID}"
    assert interface.find("mac").get("address") == "52:54:00:00:00:01"
    assert interface.find("filterref").get("filter") == f"hangar-fw-{spec.uuid}"
    assert ("accept", "in", "tcp") in nwfilters.rules(f"hangar-fw-{spec.uuid}")


def test_a_running_domain_reports_the_address_of_its_fixed_lease(nwfilters, uploads):
    driver, spec = networked_domain(seed=None)

    assert driver.state(spec.uuid).private_ip == "10.20.0.5"
    assert [d.private_ip for d in driver.list_domains()] == ["10.20.0.5"]
    assert driver.stop(spec.uuid, force=True).private_ip == ""


def test_create_on_a_network_the_host_lacks_is_a_permanent_error_and_leaves_nothing(nwfilters, uploads):
    spec = networked_spec()

    with pytest.raises(PermanentDriverError, match="network_ensure must come first"):
        driver_for(make_host()).create(spec)

    volumes = [name for pool in raw_connection().listAllStoragePools(0) for name in pool.listVolumes()]
    assert not [name for name in volumes if spec.uuid in name]
    assert nwfilters.filters == {} and uploads == {}


@needs_genisoimage
def test_create_uploads_the_seed_into_the_pool_and_attaches_it_as_a_cdrom(nwfilters, uploads):
    _, spec = networked_domain()

    assert uploads[f"{spec.uuid}.seed.iso"][16 * 2048 + 40 : 16 * 2048 + 46] == b"cidata"
    root = ElementTree.fromstring(raw_connection().lookupByUUIDString(spec.uuid).XMLDesc(0))
    cdrom = root.find("devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("file").endswith(f"/{spec.uuid}.seed.iso")


@needs_genisoimage
def test_destroy_removes_the_seed_and_the_firewall_too(nwfilters, uploads):
    driver, spec = networked_domain()

    driver.destroy(spec.uuid)
    driver.destroy(spec.uuid)

    pool = raw_connection().storagePoolLookupByName("hangar")
    assert [name for name in pool.listVolumes() if name.startswith(spec.uuid)] == []
    assert nwfilters.filters == {}
    # The network stays: it is the tenant's, not the machine's.
    assert raw_connection().networkLookupByName(f"hangar-net-{NETWORK_ID}").isActive()


def test_firewall_apply_redefines_the_domains_filter(nwfilters, uploads):
    driver, spec = networked_domain(seed=None)

    driver.firewall_apply(spec.uuid, (ALL_OUT,))

    assert nwfilters.rules(f"hangar-fw-{spec.uuid}") == [
        ("accept", "out", "udp"),
        ("accept", "in", "udp"),
        ("accept", "out", "all"),
        ("drop", "in", "all"),
        ("drop", "out", "all"),
    ]


def test_firewall_apply_to_a_missing_domain_is_not_found(nwfilters):
    with pytest.raises(DomainNotFound):
        driver_for(make_host()).firewall_apply(str(uuid.uuid4()), (SSH_IN,))


def test_a_bad_firewall_rule_is_a_permanent_error(nwfilters, uploads):
    driver, spec = networked_domain(seed=None)

    with pytest.raises(PermanentDriverError, match="bad port range"):
        driver.firewall_apply(spec.uuid, (FirewallRuleSpec("in", "tcp", 0, 22, "0.0.0.0/0"),))


def test_interface_counters_sum_the_guests_interfaces_and_are_zero_while_off(nwfilters, uploads):
    driver, spec = networked_domain(seed=None)

    counters = driver.interface_counters(spec.uuid)
    assert counters.rx_bytes >= 0 and counters.tx_bytes >= 0

    driver.stop(spec.uuid, force=True)
    assert driver.interface_counters(spec.uuid) == InterfaceCounters(rx_bytes=0, tx_bytes=0)
    with pytest.raises(DomainNotFound):
        driver.interface_counters(str(uuid.uuid4()))


# --- 1:1 NAT: where nft runs ------------------------------------------------------------------------------------------
class FakeRun:
    def __init__(self, returncode: int = 0, stderr: str = ""):
        self.calls: list[tuple[list[str], str]] = []
        self.returncode, self.stderr = returncode, stderr

    def __call__(self, command, *, input, **kwargs):
        self.calls.append((command, input))
        return subprocess.CompletedProcess(command, self.returncode, stdout="", stderr=self.stderr)


def test_nat_apply_on_a_local_host_feeds_the_rule_set_to_nft(monkeypatch):
    run = FakeRun()
    monkeypatch.setattr(libvirt_driver.subprocess, "run", run)
    monkeypatch.setattr(libvirt_driver, "_network_daemon_namespace", lambda: "")
    monkeypatch.setattr(libvirt_driver.os, "geteuid", lambda: 0)
    mappings = (NatMapping("203.0.113.5", "10.20.0.5"),)

    driver_for(make_host("qemu:///system")).nat_apply(mappings)

    assert run.calls == [(["nft", "-f", "-"], libvirt_xml.nat_ruleset(mappings))]


def test_nat_apply_enters_the_namespace_libvirtd_runs_in(monkeypatch):
    run = FakeRun()
    monkeypatch.setattr(libvirt_driver.subprocess, "run", run)
    monkeypatch.setattr(libvirt_driver, "_network_daemon_namespace", lambda: "/proc/42/ns/net")
    monkeypatch.setattr(libvirt_driver.os, "geteuid", lambda: 1000)

    driver_for(make_host("qemu:///system")).nat_apply(())

    assert run.calls[0][0] == ["sudo", "-n", "nsenter", "--net=/proc/42/ns/net", "nft", "-f", "-"]


def test_nat_apply_on_a_remote_host_runs_nft_over_ssh(monkeypatch):
    run = FakeRun()
    monkeypatch.setattr(libvirt_driver.subprocess, "run", run)

    driver_for(make_host("qemu+ssh://hangar@kvm-1.example.com:2222/system")).nat_apply(())

    assert run.calls[0][0] == [
        *("ssh", "-o", "BatchMode=yes", "-p", "2222", "hangar@kvm-1.example.com"),
        *("sudo", "-n", "nft", "-f", "-"),
    ]


@pytest.mark.parametrize(("returncode", "expected"), [(1, PermanentDriverError), (255, TransientDriverError)])
def test_nat_apply_failures_are_classified(monkeypatch, returncode, expected):
    monkeypatch.setattr(libvirt_driver.subprocess, "run", FakeRun(returncode, "Error: syntax error"))

    with pytest.raises(expected, match="syntax error"):
        driver_for(make_host("qemu+ssh://kvm-1/system")).nat_apply(())


def test_nat_apply_on_the_test_driver_checks_the_mappings_but_touches_nothing(monkeypatch):
    monkeypatch.setattr(libvirt_driver.subprocess, "run", None)  # would fail if called
    driver = driver_for(make_host())

    driver.nat_apply((NatMapping("203.0.113.5", "10.20.0.5"),))
    with pytest.raises(PermanentDriverError, match="one private address"):
        driver.nat_apply((NatMapping("203.0.113.5", "10.20.0.5"), NatMapping("203.0.113.5", "10.20.0.6")))


# --- cold migration: two hosts on one daemon, each with its own pool ------------------------------------------------
def test_a_shut_off_domain_moves_to_another_pool_of_the_same_daemon():
    source = driver_for(make_host())
    target = driver_for(Host(name="kvm-2", driver="libvirt", uri=TEST_URI, storage_pool="hangar-b", vcpus=8,
                             ram_mib=16384, disk_gib=500))  # fmt: skip
    spec = make_spec()
    source.create(spec)
    with pytest.raises(PermanentDriverError, match="must be shut off"):
        source.migrate_to(spec.uuid, target)
    source.stop(spec.uuid, force=True)

    info = source.migrate_to(spec.uuid, target)

    assert info.state == PowerState.SHUTOFF
    assert [d.uuid for d in target.list_domains()] == [spec.uuid]
    assert source.list_domains() == []
    conn = raw_connection()
    assert f"{spec.uuid}.qcow2" not in conn.storagePoolLookupByName("hangar").listVolumes()
    moved = conn.storagePoolLookupByName("hangar-b").storageVolLookupByName(f"{spec.uuid}.qcow2")
    definition = ElementTree.fromstring(conn.lookupByUUIDString(spec.uuid).XMLDesc(0))
    assert definition.find("devices/disk/source").get("file") == moved.path()
    assert definition.find("devices/serial/log").get("file").startswith(str(libvirt_driver.settings.HANGAR_IMAGE_DIR))
    # Asked again (a retry), it leaves the domain where it is; it runs and is destroyed on its new host.
    assert source.migrate_to(spec.uuid, target).state == PowerState.SHUTOFF
    assert target.start(spec.uuid).state == PowerState.RUNNING
    target.destroy(spec.uuid)
    assert conn.storagePoolLookupByName("hangar-b").listVolumes() == []


def test_moving_a_domain_neither_host_has_is_not_found():
    source = driver_for(make_host())
    target = driver_for(Host(name="kvm-2", driver="libvirt", uri=TEST_URI, storage_pool="hangar-b", vcpus=8,
                             ram_mib=16384, disk_gib=500))  # fmt: skip
    with pytest.raises(DomainNotFound):
        source.migrate_to(str(uuid.uuid4()), target)


@needs_genisoimage
def test_a_moved_domain_takes_its_seed_to_the_new_pool_and_keeps_its_firewall(nwfilters, uploads):
    source, spec = networked_domain()
    target = driver_for(Host(name="kvm-2", driver="libvirt", uri=TEST_URI, storage_pool="hangar-b", vcpus=8,
                             ram_mib=16384, disk_gib=500))  # fmt: skip
    source.stop(spec.uuid, force=True)

    source.migrate_to(spec.uuid, target)

    conn = raw_connection()
    seed = conn.storagePoolLookupByName("hangar-b").storageVolLookupByName(f"{spec.uuid}.seed.iso")
    assert f"{spec.uuid}.seed.iso" not in conn.storagePoolLookupByName("hangar").listVolumes()
    definition = ElementTree.fromstring(conn.lookupByUUIDString(spec.uuid).XMLDesc(0))
    assert definition.find("devices/disk[@device='cdrom']/source").get("file") == seed.path()
    assert f"hangar-fw-{spec.uuid}" in nwfilters.filters  # same daemon: the domain still uses it
