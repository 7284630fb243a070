"""An organisation's standing: owned by tenants.services, acted on by compute and billing, changed by operators
only through admin actions with a confirmation step."""

from django.urls import reverse

from billing.models import AccountEvent
from compute.models import InstanceEvent
from tenants.models import Tenant, TenantEvent
from tenants.services import tenant_hold, tenant_resume, tenant_suspend
from tests.conftest import login_client
from tests.factories import UserFactory
from tests.factories.compute import InstanceFactory

CHANGELIST = "admin:tenants_tenant_changelist"


def _operator():
    return UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)


def test_suspend_stops_machines_as_the_operator_and_records_it_everywhere(tenant):
    operator = _operator()
    running = InstanceFactory(tenant=tenant)
    stopped = InstanceFactory(tenant=tenant, state="stopped")
    tenant_suspend(tenant=tenant, actor=operator, note="Unpaid invoice")

    tenant.refresh_from_db()
    running.refresh_from_db()
    stopped.refresh_from_db()
    assert (tenant.status, tenant.status_reason) == ("suspended", "operator")
    assert tenant.suspended_at is not None
    assert running.state == "stopping" and stopped.state == "stopped"
    stop = InstanceEvent.objects.get(instance=running, action="stop", result="requested")
    assert stop.actor == operator  # the machine's own log names who stopped it
    event = TenantEvent.objects.get(tenant=tenant)
    assert (event.action, event.actor) == ("suspend", operator)
    assert "Unpaid invoice" in event.message
    assert AccountEvent.objects.get(tenant=tenant).action == "suspend"


def test_resume_lifts_it_and_the_same_status_twice_is_refused(tenant):
    tenant_hold(tenant=tenant)
    tenant_resume(tenant=tenant)
    tenant.refresh_from_db()
    assert (tenant.status, tenant.status_reason, tenant.hold_since) == ("active", "", None)
    assert list(TenantEvent.objects.filter(tenant=tenant).values_list("action", flat=True)) == ["resume", "hold"]
    try:
        tenant_resume(tenant=tenant)
    except Exception as error:
        assert getattr(error, "code", "") == "same_status"
    else:
        raise AssertionError("resuming an active tenant was not refused")


def test_admin_status_is_read_only(tenant):
    client = login_client(_operator())
    page = client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content.decode()
    assert 'name="status"' not in page
    client.post(reverse("admin:tenants_tenant_change", args=[tenant.pk]), {"name": tenant.name, "status": "suspended"})
    tenant.refresh_from_db()
    assert tenant.status == "active"


def test_admin_suspend_asks_first_then_stops_machines_of_a_tenant_without_billing_details(tenant):
    operator = _operator()
    running = InstanceFactory(tenant=tenant)
    client = login_client(operator)
    selection = {"action": "standing_suspended", "_selected_action": [tenant.pk]}

    confirm = client.post(reverse(CHANGELIST), selection)
    assert confirm.status_code == 200
    assert "Every running machine" in confirm.content.decode()
    tenant.refresh_from_db()
    assert tenant.status == "active"  # nothing happened yet

    done = client.post(reverse(CHANGELIST), {**selection, "confirmed": "yes", "note": "Abuse report 42"})
    assert done.status_code == 302
    tenant.refresh_from_db()
    running.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED
    assert running.state == "stopping"
    assert InstanceEvent.objects.get(instance=running, action="stop", result="requested").actor == operator
    assert "Abuse report 42" in TenantEvent.objects.get(tenant=tenant, action="suspend").message

    client.post(reverse(CHANGELIST), {"action": "standing_active", "_selected_action": [tenant.pk], "confirmed": "yes"})
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
