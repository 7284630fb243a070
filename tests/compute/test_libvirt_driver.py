"""The libvirt driver against libvirt's in-process test:///default driver (no daemon, state lives per connection)."""

import uuid
from xml.etree import ElementTree

import pytest

from compute.drivers import driver_for, libvirt_xml
from compute.drivers.base import (
    DomainNotFound,
    DomainSpec,
    ImageSource,
    PermanentDriverError,
    PowerState,
    TransientDriverError,
)
from compute.models import Host

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (pip install -e '.[libvirt]')")
libvirt_driver = pytest.importorskip("compute.drivers.libvirt")

TEST_URI = "test:///default"


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
def test_reconciler_sees_what_happened_on_a_libvirt_host_behind_our_back():
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
