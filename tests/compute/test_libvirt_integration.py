"""Real guests under qemu:///system, driven through the service layer or the API and a real Celery worker subprocess.

The guest is the demo image (scripts/build-demo-image): a Debian kernel and a busybox initramfs that prints
"HANGAR-DEMO-GUEST READY" on its serial console and powers off on ACPI. The first test launches it, waits for that line,
stops it (ACPI), resizes it while stopped, starts it, kills libvirtd in the middle of a stop (the task must retry and
finish once libvirtd is back), removes its domain behind Hangar's back (the reconciler must notice), and deletes it:
afterwards libvirt knows nothing of it, its disk and seed are gone, and so is its network.

A second guest is driven through the API: launched with an SSH key and user-data that writes a file, it is logged in
to over SSH with that key (the file and its hostname read back), given a public address (SSH to it through the
host's 1:1 NAT), its firewall replaced by one without port 22 (SSH fails) and the rule added back (SSH works, live),
made to send 2 MiB (the metered outbound bytes show them), and deleted: its addresses are free again and nothing of
it is left on the host.

libvirtd runs inside the network namespace $HANGAR_LIBVIRT_NETNS (scripts/ci-libvirt creates it and starts libvirtd
there), so guest bridges and every packet to a guest stay in it; the test reaches guests with `ip netns exec … ssh`.
Public addresses come from 203.0.113.0/24, routed only inside that namespace.

Skipped when libvirt/QEMU or the namespace are not set up here, unless HANGAR_REQUIRE_LIBVIRT=1 (CI), where that is a
failure. The worker and this test share a private SQLite file and the embedded broker in a temporary HANGAR_VAR_DIR,
whatever database the rest of the suite uses. Timings of each step are printed (pytest -s shows them).
"""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.compute.real_guests import (
    READY_LINE,
    URI,
    Worker,
    _remove_domain,
    _remove_network,
    demo_image_registered,
    libvirtd_answers,
    libvirtd_pid,
    local_host,
    namespace,
    publishing_to,
    shared_database,
    ssh,
    start_libvirtd,
    virsh,
    wait_for_ssh,
)

pytestmark = pytest.mark.slow


# --- the test -------------------------------------------------------------------------------------------------------
def test_a_real_guest_boots_stops_resizes_restarts_survives_libvirtd_and_is_deleted(
    demo_image, tmp_path, django_db_blocker, monkeypatch
):
    import libvirt

    from compute import reconciler, services
    from compute.console import instance_console_output
    from compute.models import Flavor, Instance
    from compute.network.models import Network
    from tenants.roles import Role
    from tests.factories import MembershipFactory

    worker = Worker(tmp_path)
    timings: dict[str, float] = {}
    instance_id = None
    network_ids: list[str] = []
    killed_libvirtd = False

    def current() -> Instance:
        return Instance.objects.select_related("host", "flavor").get(pk=instance_id)

    def in_state(state: str):
        return lambda: current().state == state

    def console() -> str:
        return instance_console_output(instance=current(), lines=200)

    started = time.monotonic()
    worker.migrate()
    worker.start()
    try:
        with django_db_blocker.unblock(), shared_database(worker.database), publishing_to(tmp_path, monkeypatch):
            local_host()
            image = demo_image_registered(demo_image)
            tiny = Flavor.objects.create(name="it.tiny", vcpus=1, ram_mib=160, disk_gib=1, monthly_price=Decimal("1"))
            small = Flavor.objects.create(name="it.small", vcpus=2, ram_mib=192, disk_gib=2, monthly_price=Decimal("2"))
            membership = MembershipFactory(role=Role.OWNER)
            tenant, user = membership.tenant, membership.user

            # Launch → running, and the guest's boot line on the serial console.
            launched_at = time.monotonic()
            instance = services.instance_launch(
                tenant=tenant, user=user, name="it-guest", flavor=tiny, image=image, keys=[]
            )
            instance_id = instance.pk
            network_ids = [str(pk) for pk in Network.objects.filter(tenant=tenant).values_list("pk", flat=True)]
            worker.wait_for(in_state("running"), what="the build", timeout=180)
            worker.wait_for(lambda: READY_LINE in console(), what="the boot line on the serial console", timeout=180)
            timings["launch → boot line"] = time.monotonic() - launched_at

            conn = libvirt.open(URI)
            domain = conn.lookupByUUIDString(str(instance_id))
            assert domain.name() == f"hangar-{instance_id}" and domain.isActive()
            pool = conn.storagePoolLookupByName("hangar")
            pool_path = Path(ElementTree.fromstring(pool.XMLDesc(0)).findtext("target/path"))
            overlay = pool_path / f"{instance_id}.qcow2"
            assert overlay.is_file()

            # Stop: an ACPI shutdown the guest honours (not a forced power-off).
            services.instance_stop(instance=current(), user=user)
            timings["stop (ACPI)"] = worker.wait_for(in_state("stopped"), what="the stop", timeout=120)
            assert "ACPI power button" in console()
            assert not domain.isActive()

            # Resize while stopped: vCPUs, memory and a larger disk (qemu-img resize on the overlay).
            services.instance_resize(instance=current(), user=user, flavor=small)
            timings["resize"] = worker.wait_for(
                lambda: current().state == "stopped" and current().flavor_id == small.pk, what="the resize", timeout=120
            )
            definition = ElementTree.fromstring(conn.lookupByUUIDString(str(instance_id)).XMLDesc(0))
            assert definition.findtext("vcpu") == "2"
            assert int(definition.findtext("memory")) == 192 * 1024
            pool.refresh(0)
            assert pool.storageVolLookupByName(f"{instance_id}.qcow2").info()[1] == 2 * 1024**3

            # Start again: a second boot line.
            services.instance_start(instance=current(), user=user)
            restarted_at = time.monotonic()
            worker.wait_for(in_state("running"), what="the start", timeout=120)
            worker.wait_for(lambda: console().count(READY_LINE) >= 2, what="the second boot line", timeout=180)
            timings["start → boot line"] = time.monotonic() - restarted_at
            conn.close()

            # Kill libvirtd as the stop begins: the task fails on the dead connection, retries, and finishes once
            # libvirtd is back.
            pid = libvirtd_pid()
            assert pid is not None, "libvirtd runs without /run/libvirtd.pid; start it with `libvirtd -d`"
            retries_before = worker.output().count("retry: Retry in")
            services.instance_stop(instance=current(), user=user)
            os.kill(pid, signal.SIGKILL)
            killed_libvirtd = True
            worker.wait_for(lambda: libvirtd_pid() is None, what="libvirtd to die", timeout=30)
            outage_started = time.monotonic()
            worker.wait_for(
                lambda: worker.output().count("retry: Retry in") > retries_before,
                what="the stop task to retry",
                timeout=60,
            )
            assert current().state == "stopping"
            start_libvirtd()
            worker.wait_for(libvirtd_answers, what="libvirtd to come back", timeout=60)
            killed_libvirtd = False
            worker.wait_for(in_state("stopped"), what="the stop after libvirtd came back", timeout=180)
            timings["stop across a libvirtd restart"] = time.monotonic() - outage_started

            # A domain removed behind Hangar's back: the reconciler puts the instance in error.
            virsh("undefine", f"hangar-{instance_id}")
            report = reconciler.reconcile()
            assert str(instance_id) in report.vanished
            assert current().state == "error"

            # Delete: nothing of ours is left on the host.
            services.instance_delete(instance=current(), user=user)
            timings["delete"] = worker.wait_for(in_state("deleted"), what="the delete", timeout=120)
            assert f"hangar-{instance_id}" not in virsh("list", "--all", "--name").split()
            assert not overlay.exists()
            assert not (pool_path / f"{instance_id}.console.log").exists()
            assert not (pool_path / f"{instance_id}.seed.iso").exists()
            # Its network leaves the host with its last machine there.
            worker.wait_for(
                lambda: not [n for n in network_ids if f"hangar-net-{n}" in virsh("net-list", "--all", "--name")],
                what="the network to leave the host",
                timeout=60,
            )
    finally:
        if killed_libvirtd:
            start_libvirtd()
        worker.stop()
        if instance_id is not None and libvirtd_answers():
            _remove_domain(str(instance_id))
            for network_id in network_ids:
                _remove_network(network_id)
        timings["total"] = time.monotonic() - started
        print("\nlibvirt integration timings: " + ", ".join(f"{step} {sec:.1f} s" for step, sec in timings.items()))


# --- networking, through the API ----------------------------------------------------------------------------------
USER_DATA = """#cloud-config
write_files:
  - path: /root/from-user-data.txt
    content: |
      written by user-data
"""
SSH_IN = {"direction": "in", "protocol": "tcp", "port_min": 22, "cidr": "0.0.0.0/0"}
ICMP_IN = {"direction": "in", "protocol": "icmp", "cidr": "0.0.0.0/0"}
ALL_OUT = {"direction": "out", "protocol": "any", "cidr": "0.0.0.0/0"}


def test_through_the_api_a_real_guest_takes_its_key_and_user_data_answers_ssh_at_its_public_address_behind_its_firewall(
    guest_api, ssh_key
):
    import libvirt

    from compute.drivers.libvirt_xml import bridge_name
    from compute.network.models import Network, PublicIP, PublicIPPool
    from compute.network.tasks import sample_traffic

    with guest_api("networking", name="it.net", vcpus=1, ram_mib=160, disk_gib=1) as api:
        call = api.call
        # The operator's pool: the documentation range, which exists only inside the namespace.
        PublicIPPool.objects.create(name="it-public", cidr="203.0.113.8/29", excluded="203.0.113.9")

        def instance() -> dict:
            return call("get", f"instances/{instance_id}/", expect=200)

        # Launch with a key and user-data that writes a file; SSH in with the key, read the file and the name.
        instance_id = api.launch("it-net-guest", key=api.upload_key(), user_data=USER_DATA)
        network_ids = list(api.networks)
        private_ip = api.reachable(instance_id)
        answer = ssh(ssh_key, private_ip, "cat /root/from-user-data.txt; hostname").stdout.decode()
        assert answer.split("\n")[:2] == ["written by user-data", "it-net-guest"], answer
        api.step("launch → SSH with the key, file and hostname read")

        # A public address, allocated and assigned: SSH to it.
        public = call("post", "ips/", {}, expect=201)
        assert public["address"].startswith("203.0.113.")
        call("post", f"ips/{public['id']}/actions/", {"type": "assign", "instance": instance_id}, expect=202)
        assert instance()["public_ip"] == public["address"]
        wait_for_ssh(ssh_key, public["address"], timeout=60)
        assert ssh(ssh_key, public["address"], "hostname").stdout.decode().strip() == "it-net-guest"
        api.step("public address allocated, assigned → SSH")

        # Its firewall replaced by one without port 22: SSH fails. The rule added back: SSH works, live.
        closed = call("post", "firewalls/", {"name": "no-ssh", "rules": [ICMP_IN, ALL_OUT]}, expect=201)
        call("patch", f"instances/{instance_id}/", {"firewalls": [closed["id"]]}, expect=200)
        api.worker.wait_for(
            lambda: ssh(ssh_key, public["address"], "true", timeout=10).returncode != 0,
            what="SSH to be refused",
            timeout=60,
        )
        api.step("firewall without port 22 → SSH fails")
        call("patch", f"firewalls/{closed['id']}/", {"rules": [SSH_IN, ICMP_IN, ALL_OUT]}, expect=200)
        wait_for_ssh(ssh_key, public["address"], timeout=60)
        api.step("port 22 added back → SSH works")

        # 2 MiB sent by the guest: the metered outbound bytes show them.
        sample_traffic.delay()
        api.worker.wait_for(lambda: instance()["traffic"] is not None, what="a first traffic sample", timeout=60)
        before = instance()["traffic"]["tx_bytes"]
        sent = ssh(ssh_key, public["address"], "head -c 2097152 /dev/zero", timeout=60)
        assert len(sent.stdout) == 2 * 1024**2

        def metered() -> bool:
            sample_traffic.delay()
            time.sleep(1)
            return instance()["traffic"]["tx_bytes"] - before >= 2 * 1024**2

        api.worker.wait_for(metered, what="the 2 MiB in the metered traffic", timeout=60)
        api.step("2 MiB sent → metered")

        # Delete: the addresses are free again and nothing of the machine is left on the host.
        call("delete", f"instances/{instance_id}/", expect=202)
        api.worker.wait_for(lambda: instance()["state"] == "deleted", what="the delete", timeout=120)
        assert call("get", f"ips/{public['id']}/", expect=200)["state"] == "allocated"  # unmapped, still ours
        call("delete", f"ips/{public['id']}/", expect=204)
        assert PublicIP.objects.get(pk=public["id"]).state == "released"
        assert not Network.objects.filter(ports__instance_id=instance_id).exists()
        conn = libvirt.open(URI)
        try:
            pool = conn.storagePoolLookupByName("hangar")

            def host_clean() -> bool:
                pool.refresh(0)
                networks = virsh("net-list", "--all", "--name").split()
                return (
                    not [name for name in pool.listVolumes() if instance_id in name]
                    and f"hangar-fw-{instance_id}" not in virsh("nwfilter-list")
                    and not [n for n in network_ids if f"hangar-net-{n}" in networks]
                    and public["address"] not in namespace("nft", "list", "table", "ip", "hangar")
                )

            api.worker.wait_for(host_clean, what="the host to forget the machine", timeout=60)
        finally:
            conn.close()
        assert f"hangar-{instance_id}" not in virsh("list", "--all", "--name").split()
        bridges = namespace("ip", "-br", "link")
        assert not [n for n in network_ids if bridge_name(str(n)) in bridges]
        api.step("delete → addresses free, nothing left on the host")


def test_evacuating_a_host_moves_running_and_stopped_guests_to_another_pool(
    demo_image, tmp_path, django_db_blocker, monkeypatch
):
    """Two hosts on this machine's libvirt, each with its own storage pool: evacuating the first moves a running
    guest (shut down, disk copied, booted again) and a stopped one (copied, left off) to the second."""
    import libvirt

    from compute import services
    from compute.console import instance_console_output
    from compute.models import Flavor, Instance
    from tenants.roles import Role
    from tests.factories import MembershipFactory, UserFactory

    worker = Worker(tmp_path)
    instance_ids: list = []
    started = time.monotonic()

    def state_of(pk) -> str:
        return Instance.objects.get(pk=pk).state

    worker.migrate()
    worker.start()
    try:
        with django_db_blocker.unblock(), shared_database(worker.database), publishing_to(tmp_path, monkeypatch):
            source = local_host("evac-a", storage_pool="hangar")
            target = local_host("evac-b", storage_pool="hangar-evac", enabled=False)
            tiny = Flavor.objects.create(name="ev.tiny", vcpus=1, ram_mib=160, disk_gib=1, monthly_price=Decimal("1"))
            image = demo_image_registered(demo_image)
            membership = MembershipFactory(role=Role.OWNER)
            tenant, user = membership.tenant, membership.user
            operator = UserFactory(email="evacuating-operator@example.com", is_staff=True)

            running = services.instance_launch(tenant=tenant, user=user, name="ev-run", flavor=tiny, image=image)
            stopped = services.instance_launch(tenant=tenant, user=user, name="ev-off", flavor=tiny, image=image)
            instance_ids += [running.pk, stopped.pk]
            for pk in instance_ids:
                worker.wait_for(lambda pk=pk: state_of(pk) == "running", what="the builds", timeout=180)
            services.instance_stop(instance=Instance.objects.get(pk=stopped.pk), user=user)
            worker.wait_for(lambda: state_of(stopped.pk) == "stopped", what="the stop", timeout=120)
            services.host_enable(host=target, actor=operator)

            evacuation = services.host_evacuate(host=source, actor=operator)
            assert len(evacuation.moving) == 2 and evacuation.left == [], evacuation.summary()
            for pk in instance_ids:
                worker.wait_for(
                    lambda pk=pk: state_of(pk) in ("running", "stopped", "error"), what="the moves", timeout=300
                )

            moved_running, moved_stopped = (Instance.objects.get(pk=pk) for pk in instance_ids)
            assert (moved_running.state, moved_running.host_id) == ("running", target.pk), moved_running.error_reason
            assert (moved_stopped.state, moved_stopped.host_id) == ("stopped", target.pk), moved_stopped.error_reason
            conn = libvirt.open(URI)
            pools = {name: conn.storagePoolLookupByName(name) for name in ("hangar", "hangar-evac")}
            for pool in pools.values():
                pool.refresh(0)
            for pk in instance_ids:
                assert f"{pk}.qcow2" in pools["hangar-evac"].listVolumes()
                assert f"{pk}.qcow2" not in pools["hangar"].listVolumes()
            assert conn.lookupByUUIDString(str(moved_running.pk)).isActive()
            assert not conn.lookupByUUIDString(str(moved_stopped.pk)).isActive()
            conn.close()
            # The moved guest boots from its copied disk: its console (now in the new pool) shows the boot line.
            worker.wait_for(
                lambda: READY_LINE in instance_console_output(instance=Instance.objects.get(pk=running.pk), lines=200),
                what="the boot line on the new host",
                timeout=180,
            )
            events = list(moved_running.events.filter(action="migrate").values_list("result", flat=True))
            assert events == ["succeeded", "requested"]
    finally:
        worker.stop()
        if libvirtd_answers():
            for pk in instance_ids:
                _remove_moved_domain(str(pk))
        print(f"\nlibvirt evacuation: {time.monotonic() - started:.1f} s")


def _remove_moved_domain(uuid: str) -> None:
    """Leave both pools clean even when the evacuation test failed half-way."""
    from compute.drivers.libvirt import LibvirtDriver
    from compute.models import Host

    for pool in ("hangar", "hangar-evac"):
        host = Host(name="cleanup", driver="libvirt", uri=URI, storage_pool=pool, vcpus=1, ram_mib=256, disk_gib=1)
        LibvirtDriver(host).destroy(uuid)


@pytest.mark.django_db(transaction=True)
def test_a_line_typed_into_a_real_guests_console_gets_its_reply(demo_image):
    """The interactive console end to end: the WebSocket consumer, the libvirt driver's console stream (opened with
    virDomainOpenConsole) and the demo guest's shell on ttyS0, which evaluates what it is sent."""
    import asyncio
    import json

    from channels.routing import URLRouter

    from compute.console.routing import websocket_urlpatterns
    from compute.console.sessions import console_ticket
    from compute.drivers import driver_for
    from compute.drivers.base import DomainSpec, ImageSource
    from compute.models import Host, InstanceState
    from tenants.roles import Role
    from tests.factories import MembershipFactory
    from tests.factories.compute import FlavorFactory, ImageFactory, InstanceFactory
    from tests.websocket import WebsocketCommunicator, run_async

    host = Host.objects.create(name="local-qemu-console", driver="libvirt", uri=URI, vcpus=2, ram_mib=2048, disk_gib=10)
    membership = MembershipFactory(role=Role.MEMBER)
    instance = InstanceFactory(
        tenant=membership.tenant,
        created_by=membership.user,
        name="it-console",
        flavor=FlavorFactory(name="it.console", vcpus=1, ram_mib=160, disk_gib=1),
        image=ImageFactory(name="Hangar demo guest (console)"),
        host=host,
        state=InstanceState.RUNNING,
    )
    uuid = str(instance.pk)
    driver = driver_for(host)
    source = ImageSource(
        disk_path=str(demo_image / "disk.raw"),
        disk_format="raw",
        kernel_path=str(demo_image / "vmlinuz"),
        initrd_path=str(demo_image / "initrd.img"),
        kernel_cmdline="console=ttyS0 quiet",
    )
    timings = {}
    started = time.monotonic()
    try:
        driver.create(DomainSpec(uuid=uuid, name="it-console", vcpus=1, ram_mib=160, disk_gib=1, image=source))
        deadline = time.monotonic() + 180
        while READY_LINE not in driver.console_output(uuid, lines=200):
            assert time.monotonic() < deadline, "the guest never printed its ready line"
            time.sleep(0.5)
        timings["boot"] = time.monotonic() - started

        async def scenario() -> str:
            communicator = WebsocketCommunicator(
                URLRouter(websocket_urlpatterns),
                f"/ws/instances/{uuid}/console/?ticket={console_ticket(instance=instance, user=membership.user)}",
            )
            communicator.scope["user"] = membership.user
            connected, _ = await communicator.connect()
            assert connected
            screen = ""
            sent = False
            deadline = asyncio.get_running_loop().time() + 60
            while "hangar-42" not in screen.replace("hangar-$((6*7))", ""):
                remaining = deadline - asyncio.get_running_loop().time()
                assert remaining > 0, f"no reply from the guest's shell; the console showed: {screen[-2000:]!r}"
                message = await communicator.receive_or_none(timeout=min(remaining, 3))
                if message is not None and message["type"] == "websocket.close":
                    raise AssertionError(f"the console closed: {screen[-2000:]!r}")
                if message is not None and message.get("text"):
                    assert json.loads(message["text"])["final"] is False, message["text"]
                elif message is not None and message.get("bytes"):
                    screen += message["bytes"].decode(errors="replace")
                if not sent or message is None:
                    # The line the test types; the shell echoes it and prints the sum it asks for.
                    await communicator.send_to(text_data="echo hangar-$((6*7))\r")
                    sent = True
            await communicator.disconnect()
            return screen

        screen = run_async(scenario)
        timings["console reply"] = time.monotonic() - started - timings["boot"]
        assert "hangar-42" in screen
    finally:
        _remove_domain(uuid)
        print("\nlibvirt console timings: " + ", ".join(f"{step} {sec:.1f} s" for step, sec in timings.items()))
