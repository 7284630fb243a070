"""The organisation's activity log: every kind of change is recorded exactly once, with who made it (member, token,
operator or Hangar), through which door and from where; owners and admins read it on a page, as CSV and through
the API; old entries are purged."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenants.models import ActivityEntry, ApiToken, Invitation, Membership
from tenants.roles import Role
from tenants.services import activity_purge, api_token_create, tenant_suspend
from tests.api.conftest import bearer_client, token_for
from tests.api.test_generic import assert_error
from tests.conftest import login_client
from tests.factories import InvitationFactory, MembershipFactory, UserFactory
from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory, InstanceFactory, new_public_key
from tests.factories.tenants import ActivityEntryFactory

pytestmark = pytest.mark.django_db
Resource = ActivityEntry.ResourceType


def the_entry(tenant, **filters) -> ActivityEntry:
    entries = list(ActivityEntry.objects.filter(tenant=tenant, **filters))
    assert len(entries) == 1, [str(entry) for entry in entries]
    return entries[0]


def _operator():
    return UserFactory(is_staff=True, is_superuser=True)


# --- members, roles, invitations, tokens, the organisation -----------------------------------------------------------


def test_renaming_the_organisation_is_recorded_once_with_the_owner_and_address(owner, tenant):
    login_client(owner).post(reverse("tenant-settings"), {"name": "Renamed Ltd"}, REMOTE_ADDR="198.51.100.4")
    entry = the_entry(tenant)
    assert (entry.actor, entry.actor_email, entry.channel) == (owner, owner.email, "dashboard")
    assert (entry.resource_type, entry.resource_id, entry.resource_name) == (
        Resource.ORGANISATION,
        str(tenant.pk),
        "Renamed Ltd",
    )
    assert (entry.action, entry.action_label, entry.outcome) == ("rename", "Organisation renamed", "succeeded")
    assert entry.ip_address == "198.51.100.4"
    assert "Renamed Ltd" in entry.message


def test_role_changes_and_removals_name_the_member(owner_client, owner, member, admin_user, tenant):
    target = Membership.objects.get(user=member)
    owner_client.post(reverse("membership-role", args=[target.pk]), {"role": Role.VIEWER})
    entry = the_entry(tenant, action="role_change")
    assert (entry.actor, entry.resource_type, entry.resource_name) == (owner, Resource.MEMBER, member.email)
    owner_client.post(reverse("membership-remove", args=[Membership.objects.get(user=admin_user).pk]))
    entry = the_entry(tenant, action="member_remove")
    assert (entry.actor, entry.resource_name, entry.message) == (
        owner,
        admin_user.email,
        f"Removed {admin_user.email} (admin).",
    )
    assert ActivityEntry.objects.filter(tenant=tenant).count() == 2


def test_invitations_sent_withdrawn_and_accepted(owner_client, owner, tenant):
    owner_client.post(reverse("team"), {"email": "new@example.com", "role": Role.VIEWER})
    sent = the_entry(tenant, action="invite")
    invitation = Invitation.objects.get(tenant=tenant)
    assert (sent.actor, sent.resource_type, sent.resource_id) == (owner, Resource.INVITATION, str(invitation.pk))
    owner_client.post(reverse("invitation-revoke", args=[invitation.pk]))
    assert the_entry(tenant, action="invite_revoke").actor == owner

    token, token_hash = Invitation.new_token()
    InvitationFactory(tenant=tenant, email="joiner@example.com", role=Role.MEMBER, token_hash=token_hash)
    joiner = UserFactory(email="joiner@example.com")
    login_client(joiner).post(reverse("invitation-accept", args=[token]))
    accepted = the_entry(tenant, action="invite_accept")
    assert (accepted.actor, accepted.resource_type, accepted.resource_name) == (joiner, Resource.MEMBER, joiner.email)
    assert ActivityEntry.objects.filter(tenant=tenant).count() == 3


def test_tokens_created_and_revoked(member_client, member, admin_user, tenant):
    member_client.post(reverse("api-tokens"), {"name": "ci", "scope": "read"})
    created = the_entry(tenant, action="token_create")
    api_token = ApiToken.objects.get(tenant=tenant)
    assert (created.actor, created.resource_type, created.resource_name) == (member, Resource.API_TOKEN, "ci")
    login_client(admin_user).post(reverse("api-token-revoke", args=[api_token.pk]))
    revoked = the_entry(tenant, action="token_revoke")
    assert (revoked.actor, revoked.resource_id) == (admin_user, str(api_token.pk))


def test_an_operator_suspending_is_recorded_once_and_so_is_each_machine_it_stops(tenant):
    operator = _operator()
    running = InstanceFactory(tenant=tenant)
    client = login_client(operator)
    selection = {"action": "standing_suspended", "_selected_action": [tenant.pk], "confirmed": "yes"}
    client.post(reverse("admin:tenants_tenant_changelist"), selection, REMOTE_ADDR="192.0.2.99")
    # Billing logs the suspension too (and e-mails about it), but the activity log has it once.
    suspended = the_entry(tenant, resource_type=Resource.ORGANISATION)
    assert (suspended.action, suspended.actor, suspended.channel) == ("suspend", operator, "admin")
    assert suspended.ip_address == "192.0.2.99"
    stopped = the_entry(tenant, resource_type=Resource.INSTANCE)
    assert (stopped.action, stopped.outcome, stopped.actor) == ("stop", "requested", operator)
    assert stopped.resource_id == str(running.pk)


def test_the_system_acting_on_its_own_is_recorded_as_hangar(tenant):
    tenant_suspend(tenant=tenant, actor=None, reason="credit")
    entry = the_entry(tenant)
    assert (entry.actor, entry.actor_email, entry.channel, entry.ip_address) == (None, "", "system", None)
    assert entry.actor_label == "Hangar"


# --- resources, through the dashboard and the API --------------------------------------------------------------------


@pytest.fixture
def catalog(db):
    return HostFactory(), FlavorFactory(name="s2"), ImageFactory(name="Debian 12")


def test_a_launch_through_the_api_is_recorded_once_with_the_token(
    member, tenant, catalog, django_capture_on_commit_callbacks
):
    _, flavor, image = catalog
    api_token, secret = token_for(member, tenant)
    ActivityEntry.objects.all().delete()  # the token's creation
    client = bearer_client(secret)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/instances/",
            {"name": "web-1", "flavor": str(flavor.pk), "image": str(image.pk)},
            format="json",
            REMOTE_ADDR="203.0.113.7",
        )
    assert response.status_code == 202, response.content
    instance_id = response.json()["id"]
    # The build ran (eagerly) and succeeded: the machine's own log has it, the activity log only has the request.
    entry = the_entry(tenant)
    assert (entry.resource_type, entry.resource_id, entry.resource_name) == (Resource.INSTANCE, instance_id, "web-1")
    assert (entry.action, entry.outcome, entry.channel) == ("launch", "requested", "api")
    assert (entry.actor, entry.token_id, entry.token_name) == (member, api_token.pk, "test")
    assert entry.ip_address == "203.0.113.7"
    assert entry.actor_label == f"{member.email} (token “test”)"


def test_a_refused_request_is_recorded_with_its_outcome(member, member_client, tenant):
    busy = InstanceFactory(tenant=tenant, state="stopping")
    response = member_client.post(reverse("compute:instance-start", args=[busy.pk]))
    assert response.status_code == 302
    entry = the_entry(tenant)
    assert (entry.action, entry.outcome, entry.actor, entry.channel) == ("start", "refused", member, "dashboard")
    assert "stopping" in entry.message


def test_ssh_keys_added_through_the_api_and_deleted_on_the_dashboard(member, member_client, tenant):
    _, secret = token_for(member, tenant)
    ActivityEntry.objects.all().delete()
    response = bearer_client(secret).post(
        "/api/v1/ssh-keys/", {"name": "laptop", "public_key": new_public_key()}, format="json"
    )
    assert response.status_code == 201, response.content
    added = the_entry(tenant, action="create")
    assert (added.resource_type, added.resource_name, added.channel, added.token_name) == (
        Resource.SSH_KEY, "laptop", "api", "test",
    )  # fmt: skip
    member_client.post(reverse("compute:sshkey-delete", args=[response.json()["id"]]))
    deleted = the_entry(tenant, action="delete")
    assert (deleted.actor, deleted.channel, deleted.token_name) == (member, "dashboard", "")


def test_billing_settings_by_members_and_credit_by_operators(tenant):
    billing_member = MembershipFactory(tenant=tenant, role=Role.BILLING).user
    client = login_client(billing_member)
    client.post(reverse("billing:budget"), {"amount": "100.00"})
    client.post(reverse("billing:details"), {"legal_name": "Acme GmbH", "address": "Main St 1", "vat_id": ""})
    entries = ActivityEntry.objects.filter(tenant=tenant, resource_type=Resource.BILLING)
    assert sorted((entry.action, entry.actor) for entry in entries) == [
        ("budget", billing_member),
        ("details", billing_member),
    ]
    operator = _operator()
    login_client(operator).post(
        reverse("admin:billing_creditentry_add"), {"tenant": tenant.pk, "amount": "12.50", "description": "Wire"}
    )
    topup = the_entry(tenant, action="topup")
    assert (topup.actor, topup.channel, topup.resource_type) == (operator, "admin", Resource.BILLING)


def test_budget_alerts_and_worker_outcomes_are_not_changes(member, tenant, catalog, django_capture_on_commit_callbacks):
    from billing.services import budget_check, budget_set

    _, flavor, image = catalog
    from compute.services import instance_launch

    with django_capture_on_commit_callbacks(execute=True):
        instance = instance_launch(tenant=tenant, user=member, name="web-1", flavor=flavor, image=image)
    instance.refresh_from_db()
    assert instance.state == "running"
    budget_set(tenant=tenant, actor=member, amount=Decimal("0.01"))
    budget_check(tenant=tenant, now=timezone.now() + timedelta(days=2))
    assert sorted(ActivityEntry.objects.filter(tenant=tenant).values_list("action", flat=True)) == ["budget", "launch"]


# --- reading it ----------------------------------------------------------------------------------------------------


def test_owners_and_admins_see_the_page_others_do_not(owner, admin_user, member, billing_user, viewer, tenant):
    for user in (owner, admin_user):
        assert login_client(user).get(reverse("activity")).status_code == 200
    for user in (member, billing_user, viewer):
        assert login_client(user).get(reverse("activity")).status_code == 403
        assert login_client(user).get(reverse("activity-export")).status_code == 403
    assert "Activity" in login_client(admin_user).get(reverse("home")).content.decode()
    assert ">Activity<" not in login_client(member).get(reverse("home")).content.decode()


def test_the_page_filters_by_person_resource_and_time(owner, owner_client, member, tenant):
    old = ActivityEntryFactory(tenant=tenant, actor=member, actor_email=member.email, resource_name="db-1")
    ActivityEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    ActivityEntryFactory(tenant=tenant, actor=owner, actor_email=owner.email, resource_name="web-1")
    ActivityEntryFactory(tenant=tenant, actor_email="", resource_type=Resource.ORGANISATION, resource_name="")
    ActivityEntryFactory(resource_name="elsewhere")  # another organisation's

    def names(**query):
        response = owner_client.get(reverse("activity"), query)
        assert response.status_code == 200
        return sorted(entry.resource_name for entry in response.context["entries"])

    assert names() == ["", "db-1", "web-1"]
    assert names(actor=member.pk) == ["db-1"]
    assert names(actor="system") == [""]
    assert names(resource_type=Resource.INSTANCE) == ["db-1", "web-1"]
    assert names(resource="web") == ["web-1"]
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    assert names(since=since) == ["", "web-1"]
    assert names(until=since) == ["db-1"]
    # A bad value shows the error and lists nothing, rather than everything.
    response = owner_client.get(reverse("activity"), {"since": "yesterday"})
    assert response.status_code == 200 and not response.context["entries"]
    assert response.context["filter"].form.errors


def test_the_page_is_paginated_within_a_fixed_number_of_queries(owner_client, tenant, django_assert_max_num_queries):
    ActivityEntryFactory.create_batch(60, tenant=tenant)
    owner_client.get(reverse("activity"))  # warms the session and the tenant
    with django_assert_max_num_queries(12):
        response = owner_client.get(reverse("activity"))
    assert len(response.context["entries"]) == 50
    assert response.context["page_obj"].paginator.count == 60
    second = owner_client.get(reverse("activity"), {"page": 2})
    assert len(second.context["entries"]) == 10


def test_csv_export_has_every_matching_entry_and_defuses_formulas(owner_client, tenant):
    ActivityEntryFactory(tenant=tenant, resource_name='=HYPERLINK("http://x")', resource_type=Resource.API_TOKEN)
    ActivityEntryFactory(tenant=tenant, resource_name="web-1", token_name="ci")
    response = owner_client.get(reverse("activity-export"), {"resource_type": Resource.API_TOKEN})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["time (UTC)", "actor", "token"]
    assert len(rows) == 2
    assert rows[1][7] == '\'=HYPERLINK("http://x")'


def test_the_api_lists_and_filters_it_for_owners_and_admins(owner, member, tenant, django_assert_max_num_queries):
    ActivityEntryFactory.create_batch(3, tenant=tenant, resource_type=Resource.INSTANCE)
    ActivityEntryFactory(
        tenant=tenant, resource_type=Resource.SSH_KEY, channel="api", actor=member, actor_email=member.email
    )
    ActivityEntryFactory(resource_type=Resource.SSH_KEY)  # another organisation's
    _, secret = api_token_create(membership=Membership.objects.get(user=owner), name="audit", scope="read")
    client = bearer_client(secret)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/activity/", {"resource_type": "ssh_key"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["meta"]["total"] == 1
    entry = body["data"][0]
    assert (entry["resource_type"], entry["actor"], entry["actor_id"], entry["channel"]) == (
        "ssh_key", member.email, member.pk, "api",
    )  # fmt: skip
    total = ActivityEntry.objects.filter(tenant=tenant).count()  # the 4 above and the audit token's creation
    assert client.get("/api/v1/activity/").json()["meta"]["total"] == total
    assert client.get("/api/v1/activity/", {"actor": member.pk}).json()["meta"]["total"] == 1
    assert client.get("/api/v1/activity/", {"action": "token_create"}).json()["data"][0]["resource_name"] == "audit"
    assert_error(client.get("/api/v1/activity/", {"created_after": "soon"}), 400, "invalid")
    _, member_secret = token_for(member, tenant)
    assert_error(bearer_client(member_secret).get("/api/v1/activity/"), 403, "permission_denied")


# --- retention -----------------------------------------------------------------------------------------------------


def test_entries_older_than_the_retention_period_are_purged(tenant, settings):
    settings.ACTIVITY_RETENTION_DAYS = 30
    keep = ActivityEntryFactory(tenant=tenant)
    old = ActivityEntryFactory(tenant=tenant)
    ActivityEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert activity_purge() == 1
    assert list(ActivityEntry.objects.values_list("pk", flat=True)) == [keep.pk]


def test_the_purge_runs_daily_from_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["activity-purge"]
    assert entry["task"] == "tenants.tasks.activity_purge"
    from portal.celery import app

    app.loader.import_default_modules()  # the worker's autodiscovery
    assert "tenants.tasks.activity_purge" in app.tasks
    assert settings.ACTIVITY_RETENTION_DAYS == 400


def test_the_retention_period_comes_from_the_environment():
    import os
    import subprocess
    import sys

    env = {**os.environ, "ACTIVITY_RETENTION_DAYS": "0"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'portal.settings'); django.setup()",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert done.returncode != 0 and "ACTIVITY_RETENTION_DAYS=0 must be at least 1" in done.stderr


def test_a_browser_session_records_the_dashboard_channel_without_a_token(owner, tenant):
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    client.force_login(owner)
    client.post(reverse("tenant-settings"), {"name": "Another"})
    entry = the_entry(tenant)
    assert (entry.channel, entry.token_id, entry.token_name) == ("dashboard", None, "")


def test_an_operator_editing_the_organisation_in_the_admin_is_recorded(tenant, member):
    operator = _operator()
    membership = Membership.objects.get(user=member)
    quota = tenant.quota
    form = {
        "name": tenant.name,
        "quota-TOTAL_FORMS": "1",
        "quota-INITIAL_FORMS": "1",
        "quota-0-tenant": str(tenant.pk),
        "quota-0-instances": "50",
        "quota-0-vcpus": str(quota.vcpus),
        "quota-0-ram_mib": str(quota.ram_mib),
        "quota-0-volume_gb": str(quota.volume_gb),
        "quota-0-volumes": str(quota.volumes),
        "quota-0-public_ips": str(quota.public_ips),
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": str(membership.pk),
        "memberships-0-tenant": str(tenant.pk),
        "memberships-0-user": str(member.pk),
        "memberships-0-role": Role.ADMIN,
    }
    response = login_client(operator).post(reverse("admin:tenants_tenant_change", args=[tenant.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    # Quotas change through tenants.services (its own entry); roles only on the team page, through the services.
    entry = the_entry(tenant)
    assert (entry.action, entry.actor, entry.channel, entry.resource_type) == (
        "quota_change", operator, "admin", Resource.ORGANISATION,
    )  # fmt: skip
    assert entry.message == "instances 10 → 50."
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
