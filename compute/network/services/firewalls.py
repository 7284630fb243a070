"""Firewalls (security groups): named rule sets, and which machines they apply to.

A machine's effective rules are the union of its firewalls' rules; it always has at least one firewall (without
any, nothing would reach it). Every change — rules, name aside, or which firewalls a machine has — is sent to the
machines' hosts once it commits (network.tasks.sync_instance_firewall), which replace the rules live.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from compute.models import Instance, InstanceState
from compute.network.models import Firewall, FirewallRule, NetworkEventAction
from compute.network.rulesets import RuleInput, is_text, normal_cidr, rule_errors
from compute.network.services.common import after_commit, clean_name, owned_choice
from compute.network.services.events import network_event
from portal.errors import Conflict, InvalidRequest
from tenants.labels import labels_checked
from tenants.models import Tenant

MAX_RULES = 50
MAX_FIREWALLS_PER_INSTANCE = 5
# Machines whose host has (or is about to have) a domain to apply rules to.
SYNCED_STATES = frozenset(InstanceState.values) - {InstanceState.DELETED}


def rules_check(rules: Iterable[RuleInput]) -> list[RuleInput]:
    """The rules as given, or an InvalidRequest whose details name each bad rule's fields: {"rules": {index: …}}."""
    rules = list(rules)
    if len(rules) > MAX_RULES:
        raise InvalidRequest(
            f"A firewall has at most {MAX_RULES} rules.", code="too_many_rules", details={"field": "rules"}
        )
    problems = {index: errors for index, rule in enumerate(rules) if (errors := rule_errors(rule))}
    if problems:
        index, errors = next(iter(problems.items()))
        message = next(iter(errors.values()))
        raise InvalidRequest(
            f"Rule {index + 1}: {message}", code="invalid_rule", details={"field": "rules", "rules": problems}
        )
    return rules


def _clean_description(description: str | None) -> str:
    description = (description or "").strip()
    if not is_text(description):
        raise InvalidRequest("Use plain text for the description.", code="invalid", details={"field": "description"})
    return description[:200]


def _name_error(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"You already have a firewall called {name}; pick another name.", code="name_taken", details={"field": "name"}
    )


def rules_store(firewall: Firewall, rules: list[RuleInput]) -> None:
    """Replaces the firewall's rules with `rules` (checked by rules_check), in order."""
    firewall.rules.all().delete()
    FirewallRule.objects.bulk_create(
        FirewallRule(
            firewall=firewall,
            position=position,
            direction=rule.direction,
            protocol=rule.protocol,
            port_min=rule.port_min,
            port_max=(rule.port_max if rule.port_max is not None else rule.port_min) if rule.port_min else None,
            cidr=normal_cidr(rule.cidr),
            description=(rule.description or "").strip(),
        )
        for position, rule in enumerate(rules)
    )


def _sync_instances(firewall: Firewall) -> None:
    for instance_id in firewall.instances.filter(state__in=SYNCED_STATES).values_list("pk", flat=True):
        after_commit("sync_instance_firewall", instance_id=str(instance_id))


def _describe(rules: list[RuleInput]) -> str:
    return f"{len(rules)} rule{'s' if len(rules) != 1 else ''}"


def firewall_create(
    *,
    tenant: Tenant,
    user,
    name: str,
    description: str = "",
    rules: Iterable[RuleInput] = (),
    labels: dict | None = None,
) -> Firewall:
    name = clean_name(name, what="firewall")
    labels = labels_checked(labels)
    rules = rules_check(rules)
    with transaction.atomic():
        if Firewall.objects.filter(tenant=tenant, name__iexact=name).exists():
            raise _name_error(name)
        try:
            with transaction.atomic():
                firewall = Firewall.objects.create(
                    tenant=tenant,
                    name=name,
                    description=_clean_description(description),
                    created_by=user,
                    labels=labels,
                )
        except IntegrityError:
            raise _name_error(name) from None
        rules_store(firewall, rules)
        network_event(
            tenant_id=tenant.pk,
            action=NetworkEventAction.FIREWALL_CREATE,
            subject=name,
            resource_id=firewall.pk,
            actor=user,
            message=_describe(rules),
        )
    return firewall


def firewall_update(
    *,
    firewall: Firewall,
    user,
    name: str | None = None,
    description: str | None = None,
    rules: Iterable[RuleInput] | None = None,
) -> Firewall:
    """Changes the name, the description and/or replaces the whole rule set (applied live to its machines)."""
    name = clean_name(name, what="firewall") if name is not None else None
    rules = rules_check(rules) if rules is not None else None
    with transaction.atomic():
        locked = Firewall.objects.select_for_update().get(pk=firewall.pk)
        changes = []
        fields = ["updated_at"]
        if name is not None and name != locked.name:
            if Firewall.objects.filter(tenant_id=locked.tenant_id, name__iexact=name).exclude(pk=locked.pk).exists():
                raise _name_error(name)
            changes.append(f"renamed from {locked.name}")
            locked.name = name
            fields.append("name")
        if description is not None:
            locked.description = _clean_description(description)
            fields.append("description")
        locked.updated_at = timezone.now()
        try:
            with transaction.atomic():
                locked.save(update_fields=fields)
        except IntegrityError:
            raise _name_error(name) from None
        if rules is not None:
            rules_store(locked, rules)
            changes.append(f"rules replaced: {_describe(rules)}")
            _sync_instances(locked)
        if changes:
            network_event(
                tenant_id=locked.tenant_id,
                action=NetworkEventAction.FIREWALL_CHANGE,
                subject=locked.name,
                resource_id=locked.pk,
                actor=user,
                message="; ".join(changes),
            )
    return locked


def firewall_rules(firewall: Firewall) -> list[RuleInput]:
    """The firewall's rules as inputs, to change one and state them all again."""
    return [
        RuleInput(rule.direction, rule.protocol, rule.port_min, rule.port_max, rule.cidr, rule.description)
        for rule in firewall.rules.order_by("position", "id")
    ]


def firewall_rule_add(*, firewall: Firewall, user, rule: RuleInput) -> Firewall:
    return firewall_update(firewall=firewall, user=user, rules=[*firewall_rules(firewall), rule])


def firewall_rule_remove(*, firewall: Firewall, user, position: int) -> Firewall:
    rules = firewall_rules(firewall)
    if not 0 <= position < len(rules):
        raise InvalidRequest("That rule is no longer there.", code="invalid_rule")
    return firewall_update(firewall=firewall, user=user, rules=rules[:position] + rules[position + 1 :])


def firewall_delete(*, firewall: Firewall, user) -> None:
    """Only a firewall no live machine uses; the default one stays (machines launched without a choice get it)."""
    with transaction.atomic():
        locked = Firewall.objects.select_for_update().get(pk=firewall.pk)
        if locked.is_default:
            raise Conflict(f"{locked.name} is your default firewall; it cannot be deleted.", code="default_firewall")
        users = list(locked.instances.exclude(state=InstanceState.DELETED).values_list("name", flat=True))
        if users:
            raise Conflict(
                f"{locked.name} protects {', '.join(sorted(users)[:5])}; give them other firewalls first.",
                code="firewall_in_use",
                details={"instances": len(users)},
            )
        name = locked.name
        locked.instances.clear()
        locked.delete()
        network_event(
            tenant_id=firewall.tenant_id,
            action=NetworkEventAction.FIREWALL_DELETE,
            subject=name,
            resource_id=firewall.pk,
            actor=user,
        )


def firewalls_check(*, tenant_id, firewalls: Iterable[Firewall]) -> list[Firewall]:
    """The firewalls as given (each once), or an InvalidRequest: at least one, at most five, all the tenant's."""
    chosen = owned_choice(
        firewalls,
        model=Firewall,
        tenant_id=tenant_id,
        most=MAX_FIREWALLS_PER_INSTANCE,
        field="firewalls",
        noun="firewall",
    )
    if not chosen:
        raise InvalidRequest(
            "A machine needs at least one firewall (without one nothing reaches it); the default one allows SSH.",
            code="no_firewall",
            details={"field": "firewalls"},
        )
    return chosen


def instance_firewalls_set(*, instance: Instance, firewalls: Iterable[Firewall], user) -> Instance:
    """Replaces the machine's firewalls; its host applies the new rules live."""
    chosen = firewalls_check(tenant_id=instance.tenant_id, firewalls=firewalls)
    with transaction.atomic():
        locked = Instance.objects.select_for_update().get(pk=instance.pk)
        if locked.state in (InstanceState.DELETING, InstanceState.DELETED):
            raise Conflict(
                f"{locked.name} is {locked.get_state_display().lower()}.",
                code="instance_busy",
                details={"state": locked.state},
            )
        before = sorted(locked.firewalls.values_list("name", flat=True))
        locked.firewalls.set(chosen)
        after = sorted(firewall.name for firewall in chosen)
        if before != after:
            network_event(
                tenant_id=locked.tenant_id,
                action=NetworkEventAction.FIREWALLS_SET,
                subject=locked.name,
                resource_id=locked.pk,
                actor=user,
                message=f"{', '.join(before) or 'none'} → {', '.join(after)}",
            )
            after_commit("sync_instance_firewall", instance_id=str(locked.pk))
    return locked
