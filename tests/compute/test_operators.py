"""The operators' admin: every action goes through the services (state, events, billing afterwards) and is logged;
support staff read everything and may only reconcile and retry; tenant users never reach it; lists and the overview
keep a constant query count as rows grow."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import AccountEvent, CreditEntry, Segment
from compute.models import Host, Instance, SimulatedDomain
from tenants.models import Quota, TenantEvent
from tenants.services.staff import OPERATORS, SUPPORT, staff_groups_sync
from tests.conftest import login_client
from tests.factories.compute import FlavorFactory, HostFactory, InstanceFactory
from tests.factories.tenants import MembershipFactory, TenantFactory, UserFactory


def _staff(group_name: str, email: str):
    from django.contrib.auth.models import Permission

    staff_groups_sync(group_model=Group, permission_model=Permission)  # a flushed database lost the migration's
    user = UserFactory(email=email, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def operator(db):
    return _staff(OPERATORS, "operator@example.com")


@pytest.fixture
def operator_client(operator, committed):
    client = login_client(operator)
    original = client.post

    def post(*args, **kwargs):
        with committed():  # the enqueued tasks run (eagerly) as they would after a real commit
            return original(*args, **kwargs)

    client.post = post
    return client


@pytest.fixture
def support_client(db):
    return login_client(_staff(SUPPORT, "support@example.com"))


def _act(client, model: str, action: str, objects, **extra):
    app = {"host": "compute", "instance": "compute", "tenant": "tenants"}[model]
    return client.post(
        reverse(f"admin:{app}_{model}_changelist"),
        {"action": action, "_selected_action": [str(obj.pk) for obj in objects], **extra},
        follow=True,
    )


def _logged(obj, text: str) -> bool:
    return LogEntry.objects.filter(object_id=str(obj.pk), change_message__contains=text).exists()


# --- every action through the services ----------------------------------------------------------------------------


def test_evacuate_asks_first_then_moves_machines_with_events_and_billing_intact(operator_client, operator, running):
    spare = HostFactory(name="hv-spare")
    source = running.host

    confirm = _act(operator_client, "host", "evacuate", [source])
    assert "Each host is drained" in confirm.content.decode()
    assert Instance.objects.get().host == source

    done = _act(operator_client, "host", "evacuate", [source], confirmed="yes", note="Kernel update")
    running.refresh_from_db(), source.refresh_from_db()
    assert (running.state, running.host) == ("running", spare)
    assert source.draining
    assert "1 machine moving" in done.content.decode()
    assert running.events.get(action="migrate", result="requested").actor == operator
    segment = Segment.objects.get(resource_id=running.pk)
    assert segment.ended_at is None
    assert _logged(source, "Evacuation started. Kernel update")


def test_host_enable_disable_drain_and_test_connection(operator_client, host):
    _act(operator_client, "host", "drain", [host])
    host.refresh_from_db()
    assert host.draining
    _act(operator_client, "host", "disable", [host])
    host.refresh_from_db()
    assert not host.enabled
    again = _act(operator_client, "host", "disable", [host])
    assert "hv-test is already disabled." in again.content.decode()
    _act(operator_client, "host", "enable", [host])
    host.refresh_from_db()
    assert host.enabled and not host.draining
    probe = _act(operator_client, "host", "test_connection", [host]).content.decode()
    assert "v-test: answers (simulated): 16 CPUs, 65536 MiB RAM, 1000 GiB disk; 0 domains." in probe
    assert _logged(host, "Enabled.") and _logged(host, "Disabled.")


def test_a_hosts_scheduling_flags_are_not_edited_as_fields(operator_client, host):
    page = operator_client.get(reverse("admin:compute_host_change", args=[host.pk])).content.decode()
    assert 'name="enabled"' not in page and 'name="draining"' not in page


def test_force_stop_delete_and_mark_error_keep_billing_right(operator_client, operator, running, tenant):
    _act(operator_client, "instance", "force_stop", [running])
    running.refresh_from_db()
    assert running.state == "stopped"
    assert Segment.objects.get(resource_id=running.pk).ended_at is None  # a stopped machine is still billed

    _act(operator_client, "instance", "delete_instances", [running], confirmed="yes", note="Abuse")
    running.refresh_from_db()
    assert running.state == "deleted"
    assert Segment.objects.get(resource_id=running.pk).ended_at is not None
    assert running.events.get(action="delete", result="requested").actor == operator
    assert _logged(running, "Deletion requested. Abuse")

    stuck = InstanceFactory(tenant=tenant, state="rebooting", task="reboot")
    _act(operator_client, "instance", "mark_error", [stuck], confirmed="yes", note="Host lost power")
    stuck.refresh_from_db()
    assert (stuck.state, stuck.error_reason) == ("error", "Host lost power")


def test_retry_builds_a_failed_provisioning_again_and_only_that(operator_client, host, launch, committed):
    host.fail_next_creates, host.failure_kind = 1, "permanent"
    host.save()
    with committed():
        failed = launch()
    failed.refresh_from_db()
    assert failed.state == "error" and not Segment.objects.exists()

    _act(operator_client, "instance", "retry", [failed])

    failed.refresh_from_db()
    assert failed.state == "running"
    assert Segment.objects.get(resource_id=failed.pk).ended_at is None  # billed from the successful build on
    assert [e.action for e in failed.events.order_by("created_at", "id")][-2:] == ["retry", "build"]
    with committed():
        ran = launch(name="web-2")
    Instance.objects.filter(pk=ran.pk).update(state="error")
    refused = _act(operator_client, "instance", "retry", [ran]).content.decode()
    assert "web-2 ran before it failed: only a failed provisioning can be retried." in refused


def test_quota_edits_go_through_the_service_and_the_organisations_log(operator_client, operator, tenant):
    page = operator_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content.decode()
    assert "members and roles" in page.lower() and "credit ledger" in page.lower() and "Spend this month" in page
    quota = Quota.objects.get(tenant=tenant)
    data = {
        "quota-TOTAL_FORMS": 1,
        "quota-INITIAL_FORMS": 1,
        "quota-MIN_NUM_FORMS": 0,
        "quota-MAX_NUM_FORMS": 1,
        "quota-0-tenant": tenant.pk,
        "quota-0-instances": 25,
        "quota-0-vcpus": quota.vcpus,
        "quota-0-ram_mib": quota.ram_mib,
        "quota-0-volume_gb": quota.volume_gb,
        "quota-0-volumes": quota.volumes,
        "quota-0-public_ips": quota.public_ips,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
        "creditentry-TOTAL_FORMS": 0,
        "creditentry-INITIAL_FORMS": 0,
    }
    response = operator_client.post(reverse("admin:tenants_tenant_change", args=[tenant.pk]), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert Quota.objects.get(tenant=tenant).instances == 25
    event = TenantEvent.objects.get(tenant=tenant, action="quota_change")
    assert (event.actor, event.message) == (operator, "instances 10 → 25.")


def test_a_credit_top_up_asks_for_the_amount_then_lands_in_the_ledger(operator_client, operator, tenant):
    confirm = _act(operator_client, "tenant", "record_topup", [tenant]).content.decode()
    assert "Record a credit top-up" in confirm and 'name="amount"' in confirm
    _act(operator_client, "tenant", "record_topup", [tenant], confirmed="yes", amount="abc")
    assert not CreditEntry.objects.exists()

    _act(operator_client, "tenant", "record_topup", [tenant], confirmed="yes", amount="25.00", note="Wire 17")

    entry = CreditEntry.objects.get(tenant=tenant)
    assert (entry.amount, entry.description, entry.created_by) == (Decimal("25.00"), "Wire 17", operator)
    assert AccountEvent.objects.filter(tenant=tenant, action="topup", actor=operator).exists()
    assert _logged(tenant, "Top-up of 25.00 EUR recorded. Wire 17")


def test_suspend_is_logged_in_djangos_log_and_the_organisations(operator_client, tenant):
    _act(operator_client, "tenant", "standing_suspended", [tenant], confirmed="yes", note="Fraud")
    assert TenantEvent.objects.get(tenant=tenant, action="suspend").message.startswith("Fraud")
    assert _logged(tenant, "Suspended. Fraud")


# --- support staff ------------------------------------------------------------------------------------------------


def test_support_reads_everything_and_may_reconcile_and_retry_but_nothing_else(support_client, running, tenant):
    for url in (
        reverse("ops-overview"),
        reverse("admin:compute_host_changelist"),
        reverse("admin:compute_host_change", args=[running.host_id]),
        reverse("admin:compute_instance_changelist"),
        reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        reverse("admin:billing_invoice_changelist"),
    ):
        assert support_client.get(url).status_code == 200, url

    SimulatedDomain.objects.filter(uuid=running.pk).delete()
    reconciled = _act(support_client, "instance", "reconcile_now", [running]).content.decode()
    assert "1 vanished" in reconciled

    host = running.host
    for model, action, obj in [
        ("host", "drain", host),
        ("host", "evacuate", host),
        ("instance", "force_stop", running),
        ("instance", "delete_instances", running),
        ("tenant", "standing_suspended", tenant),
        ("tenant", "record_topup", tenant),
    ]:
        _act(support_client, model, action, [obj], confirmed="yes", note="x", amount="5")
    edit = support_client.post(reverse("admin:compute_host_change", args=[host.pk]), {"name": "renamed"})
    assert edit.status_code == 403
    host.refresh_from_db(), tenant.refresh_from_db(), running.refresh_from_db()
    assert not host.draining and host.name == "hv-test"
    assert tenant.status == "active" and not CreditEntry.objects.exists()
    assert running.state == "error"  # the reconciler's doing, nothing else


def test_support_may_retry_a_failed_provisioning(support_client, host, launch, committed):
    host.fail_next_creates, host.failure_kind = 1, "permanent"
    host.save()
    with committed():
        failed = launch()
    with committed():
        _act(support_client, "instance", "retry", [failed])
    failed.refresh_from_db()
    assert failed.state == "running"


# --- tenant users -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", "/admin/overview/", "/admin/compute/host/", "/admin/tenants/tenant/"])
def test_tenant_users_cannot_reach_the_admin(owner_client, path):
    response = owner_client.get(path)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")


# --- constant query counts ----------------------------------------------------------------------------------------


def _grow(count: int) -> None:
    flavor = FlavorFactory(name="q.small")
    for n in range(count):
        tenant = TenantFactory()
        MembershipFactory(tenant=tenant)
        host = HostFactory(name=f"hv-q{n}")
        InstanceFactory(tenant=tenant, host=host, flavor=flavor, state="error", error_reason="boom")
        InstanceFactory(tenant=tenant, host=host, flavor=flavor)
        Host.objects.filter(pk=host.pk).update(draining=n % 2 == 0)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/overview/",
        "/admin/compute/host/",
        "/admin/compute/instance/",
        "/admin/compute/region/",
        "/admin/tenants/tenant/",
    ],
)
def test_lists_and_the_overview_keep_a_constant_query_count(operator_client, url):
    _grow(2)
    few = _queries(operator_client, url)
    _grow(6)
    assert _queries(operator_client, url) == few
