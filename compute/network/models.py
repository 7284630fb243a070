"""Networking: private networks and their addresses, public IPv4 pools and addresses, firewalls, traffic counters.

Also the simulated hypervisor's own networking state (SimulatedNetwork, SimulatedNat), kept in the database like
its domains, so that web, worker and beat processes see the same "hardware".
"""

import ipaddress
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from compute.drivers.base import FirewallRuleSpec
from compute.lifecycle import IPV4, BillableResource
from compute.models import Host, Instance, Region
from compute.network import addressing
from compute.network.rulesets import ANYWHERE, DIRECTIONS, PORTED, PROTOCOLS, ports_label
from portal.errors import ServiceError
from tenants.labels import validate_labels
from tenants.models import Event, TenantOwned, TenantQuerySet


class Network(TenantOwned):
    """A tenant's private network in one region: an RFC 1918 range whose addresses Hangar hands out to machines."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="networks")
    name = models.CharField(max_length=63)
    cidr = models.CharField("range (CIDR)", max_length=18)
    is_default = models.BooleanField(default=False, help_text="Machines launched without a choice join it.")
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-is_default", "name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "tenant", name="network_unique_name_per_tenant"),
            models.UniqueConstraint(
                fields=["tenant", "region"],
                condition=models.Q(is_default=True),
                name="network_one_default_per_tenant_region",
            ),
            # Default networks of different organisations never share a range (see addressing.default_cidr_candidates).
            models.UniqueConstraint(
                fields=["cidr"], condition=models.Q(is_default=True), name="network_unique_default_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cidr})"

    @property
    def ip_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def prefix(self) -> int:
        return self.ip_network.prefixlen

    @property
    def gateway_ip(self) -> str:
        return str(addressing.gateway_of(self.ip_network))

    @property
    def capacity(self) -> int:
        return addressing.capacity_of(self.ip_network)


class Port(TenantOwned):
    """One network interface of a machine: its MAC and the address it holds on one network (freed on delete)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="ports")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="ports")
    address = models.GenericIPAddressField(protocol="IPv4")
    mac = models.CharField("MAC address", max_length=17, unique=True)
    index = models.PositiveSmallIntegerField(default=0, help_text="The interface's order in the machine: 0 is eth0.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["instance", "index"]
        constraints = [
            # IP address management by constraint: two machines can never hold one address of a network.
            models.UniqueConstraint(fields=["network", "address"], name="port_unique_address_per_network"),
            models.UniqueConstraint(fields=["instance", "network"], name="port_one_per_instance_network"),
            models.UniqueConstraint(fields=["instance", "index"], name="port_unique_index_per_instance"),
        ]

    def __str__(self) -> str:
        return f"{self.address} on {self.network.name}"

    @property
    def interface(self) -> str:
        return f"eth{self.index}"


class PublicIPPool(models.Model):
    """An operator's range of public IPv4 addresses in one region, that tenants allocate from."""

    name = models.CharField(max_length=100, unique=True)
    region = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        related_name="public_ip_pools",
        blank=True,
        help_text="Its addresses reach machines of this region's hosts only. Empty: the default region.",
    )
    cidr = models.CharField(
        "range (CIDR)", max_length=18, help_text="e.g. 203.0.113.0/24; every host address is offered."
    )
    excluded = models.TextField(
        "excluded addresses",
        blank=True,
        help_text="Never handed out (the provider's gateway, reserved addresses): one per line or comma-separated; "
        "a-b for a range.",
    )
    active = models.BooleanField(default=True, help_text="Inactive pools hand out no new addresses; held ones stay.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "public IPv4 pool"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.cidr})"

    def save(self, *args, **kwargs) -> None:
        if self.region_id is None:
            self.region = Region.objects.default_or_create()  # like a host made without naming a region
        super().save(*args, **kwargs)  # write-ok: Django's own save, after filling in the default region

    def clean(self) -> None:
        try:
            network = addressing.parse_pool_cidr(self.cidr)
            addressing.parse_excluded(self.excluded, network)
        except ServiceError as error:
            raise ValidationError({error.details.get("field", "cidr"): error.message}) from None

    def addresses(self) -> list[str]:
        """Every address this pool may hand out."""
        network = addressing.parse_pool_cidr(self.cidr)
        return addressing.pool_addresses(network, addressing.parse_excluded(self.excluded, network))


class PublicIPState(models.TextChoices):
    ALLOCATED = "allocated", "Allocated"
    ASSIGNED = "assigned", "Assigned"
    RELEASED = "released", "Released"


class PublicIPQuerySet(TenantQuerySet):
    def held(self):
        """Addresses a tenant holds (and pays for): allocated or assigned, not released."""
        return self.exclude(state=PublicIPState.RELEASED)


class PublicIP(TenantOwned):
    """A public IPv4 address a tenant holds: billed per started hour while allocated, assigned to a machine or not."""

    State = PublicIPState

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pool = models.ForeignKey(PublicIPPool, on_delete=models.PROTECT, related_name="addresses_held")
    address = models.GenericIPAddressField(protocol="IPv4")
    state = models.CharField(max_length=16, choices=PublicIPState.choices, default=PublicIPState.ALLOCATED)
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, null=True, blank=True, related_name="public_ips")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    allocated_at = models.DateTimeField(default=timezone.now)
    assigned_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])

    objects = PublicIPQuerySet.as_manager()

    class Meta:
        verbose_name = "public IPv4 address"
        ordering = ["-allocated_at", "id"]
        constraints = [
            # Allocation is unique by constraint: of two concurrent requests for one address, one insert fails.
            models.UniqueConstraint(
                fields=["address"], condition=~models.Q(state="released"), name="publicip_unique_held_address"
            ),
            # 1:1 NAT: a machine has at most one public address.
            models.UniqueConstraint(
                fields=["instance"], condition=models.Q(state="assigned"), name="publicip_one_per_instance"
            ),
            models.CheckConstraint(
                condition=(models.Q(state="assigned") & models.Q(instance__isnull=False))
                | (~models.Q(state="assigned") & models.Q(instance__isnull=True)),
                name="publicip_assigned_has_instance",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "state"], name="publicip_tenant_state")]

    def __str__(self) -> str:
        return self.address

    @property
    def is_held(self) -> bool:
        return self.state != PublicIPState.RELEASED

    def can_assign(self) -> bool:
        return self.is_held

    def can_unassign(self) -> bool:
        return self.state == PublicIPState.ASSIGNED

    def can_release(self) -> bool:
        return self.is_held

    def billable(self) -> BillableResource:
        return BillableResource(
            tenant_id=self.tenant_id, resource_type=IPV4, resource_id=self.pk, name=f"IPv4 {self.address}"
        )


class Firewall(TenantOwned):
    """A named rule set applied to machines (a security group): only what its rules allow passes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=63)
    description = models.CharField(max_length=200, blank=True)
    is_default = models.BooleanField(default=False, help_text="Machines launched without a choice get it.")
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    instances = models.ManyToManyField(Instance, related_name="firewalls", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_default", "name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "tenant", name="firewall_unique_name_per_tenant"),
            models.UniqueConstraint(
                fields=["tenant"], condition=models.Q(is_default=True), name="firewall_one_default_per_tenant"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def rules_summary(self, direction: str) -> str:
        """Its rules of one direction as people read them, from the prefetched rules."""
        return "; ".join(rule.summary for rule in self.rules.all() if rule.direction == direction)

    @property
    def inbound_summary(self) -> str:
        return self.rules_summary("in") or "nothing gets in"

    @property
    def outbound_summary(self) -> str:
        return self.rules_summary("out") or "nothing gets out"


class FirewallRule(models.Model):
    """One allow rule of a firewall: direction, protocol, port range (TCP/UDP) and the peer's range."""

    firewall = models.ForeignKey(Firewall, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField(default=0)
    direction = models.CharField(max_length=3, choices=list(DIRECTIONS.items()))
    protocol = models.CharField(max_length=4, choices=list(PROTOCOLS.items()))
    port_min = models.PositiveIntegerField(null=True, blank=True)
    port_max = models.PositiveIntegerField(null=True, blank=True)
    cidr = models.CharField("source / destination", max_length=18, default=ANYWHERE)
    description = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["firewall", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(port_min__isnull=True)
                | models.Q(
                    port_min__gte=1, port_min__lte=65535, port_max__gte=models.F("port_min"), port_max__lte=65535
                ),
                name="firewallrule_ports_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(port_min__isnull=True) | models.Q(protocol__in=["tcp", "udp"]),
                name="firewallrule_ports_only_tcp_udp",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.protocol} {self.ports_label} {self.cidr}"

    @property
    def ports_label(self) -> str:
        return ports_label(self.port_min, self.port_max) if self.protocol in PORTED else "—"

    @property
    def summary(self) -> str:
        """The rule as people read it: "TCP 22 from anywhere (SSH)"."""
        ports = f" {self.ports_label}" if self.port_min is not None else ""
        peer = "anywhere" if self.cidr == ANYWHERE else self.cidr
        note = f" ({self.description})" if self.description else ""
        return f"{self.get_protocol_display()}{ports} {'from' if self.direction == 'in' else 'to'} {peer}{note}"

    def spec(self) -> FirewallRuleSpec:
        return FirewallRuleSpec(
            direction=self.direction,
            protocol=self.protocol,
            port_min=self.port_min,
            port_max=self.port_max,
            cidr=self.cidr,
        )


class TrafficCounter(models.Model):
    """A machine's last interface counter reading (to turn the next one into a delta) and its totals since launch."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="traffic")
    rx_last = models.BigIntegerField(default=0, help_text="The last reading: counters restart when the guest does.")
    tx_last = models.BigIntegerField(default=0)
    rx_total = models.BigIntegerField(default=0, help_text="Bytes received since launch, across restarts.")
    tx_total = models.BigIntegerField(default=0, help_text="Bytes sent since launch, across restarts.")
    sampled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Traffic of {self.instance_id}"


class TrafficUsage(TenantOwned):
    """Bytes one machine received and sent within one UTC hour: billing sums the month's outbound bytes."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="traffic_hours")
    hour = models.DateTimeField(help_text="The start of the hour.")
    rx_bytes = models.BigIntegerField(default=0)
    tx_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["hour", "instance"]
        constraints = [models.UniqueConstraint(fields=["instance", "hour"], name="trafficusage_one_per_hour")]
        indexes = [models.Index(fields=["tenant", "hour"], name="trafficusage_tenant_hour")]

    def __str__(self) -> str:
        return f"{self.instance_id} {self.hour:%Y-%m-%d %H}h: {self.tx_bytes} B out"


class NetworkEventAction(models.TextChoices):
    NETWORK_CREATE = "network_create", "Network created"
    NETWORK_RENAME = "network_rename", "Network renamed"
    NETWORK_DELETE = "network_delete", "Network deleted"
    IP_ALLOCATE = "ip_allocate", "Public IP allocated"
    IP_ASSIGN = "ip_assign", "Public IP assigned"
    IP_UNASSIGN = "ip_unassign", "Public IP unassigned"
    IP_RELEASE = "ip_release", "Public IP released"
    FIREWALL_CREATE = "firewall_create", "Firewall created"
    FIREWALL_CHANGE = "firewall_change", "Firewall changed"
    FIREWALL_DELETE = "firewall_delete", "Firewall deleted"
    FIREWALLS_SET = "firewalls_set", "Machine's firewalls changed"


class NetworkEvent(Event):
    """The organisation's networking log: networks, public addresses and firewalls, who changed what and when."""

    Action = NetworkEventAction

    action = models.CharField(max_length=32, choices=NetworkEventAction.choices)
    subject = models.CharField(max_length=120, help_text="What it was about, as people read it (an address, a name).")

    class Meta(Event.Meta):
        indexes = [models.Index(fields=["tenant", "-created_at"], name="networkevent_tenant_time")]


# --- the simulated hypervisor's networking "hardware" -------------------------------------------------------------


class SimulatedNetwork(models.Model):
    """A Hangar network as one simulated host realizes it (what the libvirt driver makes a libvirt network)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="simulated_networks")
    network_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    cidr = models.CharField(max_length=18)
    gateway_ip = models.GenericIPAddressField(protocol="IPv4")
    dhcp_hosts = models.JSONField(default=list, blank=True, help_text="Fixed leases: mac, ip, hostname.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["host", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "network_id"], name="simulatednetwork_unique_per_host")]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"


class SimulatedNat(models.Model):
    """One 1:1 NAT mapping on a simulated host (what the libvirt driver writes as nftables rules)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="simulated_nat")
    public_ip = models.GenericIPAddressField(protocol="IPv4")
    private_ip = models.GenericIPAddressField(protocol="IPv4")

    class Meta:
        verbose_name = "simulated NAT mapping"
        ordering = ["host", "public_ip"]
        constraints = [models.UniqueConstraint(fields=["host", "public_ip"], name="simulatednat_unique_public_ip")]

    def __str__(self) -> str:
        return f"{self.public_ip} → {self.private_ip} on {self.host}"
