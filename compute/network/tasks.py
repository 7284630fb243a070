"""Celery tasks for networking: thin adapters that take ids and call compute.network.services.

Host syncs state the whole desired state, so every one may run twice, late or out of order; transient driver
errors are retried with backoff, permanent ones are logged (the periodic sync tries again).
"""

import logging

from celery import shared_task

from compute.drivers.base import PermanentDriverError, TransientDriverError
from compute.models import Host, Instance
from compute.network.services import hosts, traffic

logger = logging.getLogger(__name__)

_OPTIONS = {
    "acks_late": True,
    "ignore_result": True,
    "autoretry_for": (TransientDriverError,),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 6,
}


def _host(host_id: str) -> Host | None:
    host = Host.objects.filter(pk=host_id).first()
    if host is None:
        logger.info("Host %s is gone; nothing to sync.", host_id)
    return host


@shared_task(name="network.tasks.sync_host_nat", **_OPTIONS)
def sync_host_nat(*, host_id: str) -> None:
    if (host := _host(host_id)) is not None:
        try:
            hosts.host_nat_sync(host=host)
        except PermanentDriverError as error:
            logger.error("NAT on host %s could not be applied: %s", host.name, error)


@shared_task(name="network.tasks.sync_host_network", **_OPTIONS)
def sync_host_network(*, host_id: str, network_id: str) -> None:
    if (host := _host(host_id)) is not None:
        try:
            hosts.host_network_sync(host=host, network_id=network_id)
        except PermanentDriverError as error:
            logger.error("Network %s on host %s could not be applied: %s", network_id, host.name, error)


@shared_task(name="network.tasks.sync_instance_firewall", **_OPTIONS)
def sync_instance_firewall(*, instance_id: str) -> None:
    instance = Instance.objects.select_related("host").filter(pk=instance_id).first()
    if instance is not None:
        try:
            hosts.instance_firewall_sync(instance=instance)
        except PermanentDriverError as error:
            logger.error("The firewall of %s could not be applied: %s", instance_id, error)


@shared_task(name="network.tasks.sync_hosts", acks_late=True, ignore_result=True)
def sync_hosts() -> None:
    """Every few minutes (beat): every enabled host's networks, NAT and firewalls, stated whole again."""
    for host in Host.objects.filter(enabled=True).order_by("name"):
        hosts.host_sync(host=host)


@shared_task(name="network.tasks.sample_traffic", acks_late=True, ignore_result=True)
def sample_traffic() -> None:
    """Every minute (beat): read every running machine's interface counters."""
    traffic.traffic_sample_running()
