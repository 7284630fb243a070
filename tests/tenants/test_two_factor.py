"""Two-factor log-in: enrolment, the second log-in step, recovery codes, and an organisation's requirement enforced
in the dashboard and the API."""

import re
from base64 import b32encode
from binascii import unhexlify

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.errors import Conflict
from tenants import services
from tenants.models import Membership, TenantEvent
from tenants.roles import Role
from tests.api.conftest import token_for
from tests.api.test_generic import assert_error
from tests.conftest import login_client
from tests.factories import MembershipFactory, UserFactory
from tests.twofactor import code_for, enable_two_factor, verified_client

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"


def _log_in(client, user, **extra):
    return client.post(reverse("login"), {"username": user.email, "password": PASSWORD}, **extra)


def _is_logged_in(client) -> bool:
    return client.get(reverse("profile")).status_code == 200


# --- enrolment -----------------------------------------------------------------------------------------------------


def test_enrolment_shows_a_qr_code_and_turns_on_with_a_code_from_the_app(member, member_client):
    page = member_client.get(reverse("two-factor-setup"))
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    assert page.context["qr_code"].startswith("data:image/svg+xml")
    secret = member_client.session["two_factor_setup_secret"]
    # The key to type by hand is the same secret, in base32 as authenticator apps expect it.
    assert re.sub(r"\s", "", page.context["manual_key"]) == b32encode(unhexlify(secret)).decode()

    wrong = member_client.post(reverse("two-factor-setup"), {"code": "000000"})
    assert wrong.status_code == 200 and "does not match" in str(wrong.context["form"].errors)
    assert not TOTPDevice.objects.filter(user=member).exists()

    response = member_client.post(reverse("two-factor-setup"), {"code": code_for(secret)})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    codes = response.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert code in response.content.decode()
    device = TOTPDevice.objects.get(user=member)
    assert device.confirmed and device.key == secret
    assert "two_factor_setup_secret" not in member_client.session
    # This browser passed the second step by enrolling; the security page now says so.
    security = member_client.get(reverse("security"))
    assert security.context["totp_device"] == device
    assert security.context["recovery_codes_left"] == 10


def test_an_abandoned_set_up_stores_nothing_and_keeps_its_qr_code(member_client, member):
    first = member_client.get(reverse("two-factor-setup")).context["manual_key"]
    assert member_client.get(reverse("two-factor-setup")).context["manual_key"] == first
    assert not TOTPDevice.objects.filter(user=member).exists()


def test_the_code_used_to_enrol_cannot_log_in(member, member_client):
    member_client.get(reverse("two-factor-setup"))
    secret = member_client.session["two_factor_setup_secret"]
    code = code_for(secret)
    member_client.post(reverse("two-factor-setup"), {"code": code})
    assert services.two_factor_verify(user=member, code=code) is None


# --- log-in --------------------------------------------------------------------------------------------------------


def test_log_in_without_two_factor_is_one_step(client, member):
    response = _log_in(client, member)
    assert response.status_code == 302 and response.url == reverse("home")
    assert _is_logged_in(client)


def test_log_in_with_two_factor_needs_the_code_before_anything(client, member):
    device = enable_two_factor(member)
    response = _log_in(client, member)
    assert response.status_code == 302
    assert response.url.startswith(reverse("two-factor-verify"))
    # The password alone logged nobody in.
    assert not _is_logged_in(client)
    assert client.get(reverse("home")).status_code == 302

    wrong = client.post(reverse("two-factor-verify"), {"code": "123456"})
    assert wrong.status_code == 200 and "not right" in str(wrong.context["form"].errors)
    assert not _is_logged_in(client)

    device.refresh_from_db()
    device.throttle_reset()  # django-otp waits a second after a wrong code; the test need not
    right = client.post(reverse("two-factor-verify"), {"code": code_for(device.key)})
    assert right.status_code == 302 and right.url == reverse("home")
    assert _is_logged_in(client)


def test_the_second_step_keeps_where_the_user_was_going(client, member):
    device = enable_two_factor(member)
    target = reverse("api-tokens")
    response = client.post(
        reverse("login") + f"?next={target}", {"username": member.email, "password": PASSWORD, "next": target}
    )
    assert response.url == reverse("two-factor-verify") + "?next=%2Fapi-tokens%2F"
    response = client.post(response.url, {"code": code_for(device.key), "next": target})
    assert response.url == target


def test_the_second_step_alone_logs_nobody_in(client, member):
    enable_two_factor(member)
    response = client.post(reverse("two-factor-verify"), {"code": "123456"})
    assert response.status_code == 302 and response.url == reverse("login")


def test_wrong_codes_count_towards_the_log_in_lock_out(client, member, settings):
    device = enable_two_factor(member)
    _log_in(client, member)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        device.refresh_from_db()
        device.throttle_reset()
        response = client.post(reverse("two-factor-verify"), {"code": "000000"})
    assert response.status_code == 429
    device.refresh_from_db()
    device.throttle_reset()
    # Locked out: even the right code, and the right password from a fresh browser, are refused for now.
    response = client.post(reverse("two-factor-verify"), {"code": code_for(device.key)})
    assert response.status_code == 429
    assert not _is_logged_in(client)
    assert _log_in(Client(), member).status_code == 429


def test_a_recovery_code_logs_in_once(client, member):
    enable_two_factor(member)
    codes = services.two_factor_recovery_codes_renew(user=member)
    _log_in(client, member)
    response = client.post(reverse("two-factor-verify"), {"code": codes[0].upper()})
    assert response.status_code == 302 and _is_logged_in(client)
    assert StaticToken.objects.filter(device__user=member).count() == 9

    again = Client()
    _log_in(again, member)
    response = again.post(reverse("two-factor-verify"), {"code": codes[0]})
    assert response.status_code == 200 and not _is_logged_in(again)


def test_new_recovery_codes_replace_the_old_ones(member):
    enable_two_factor(member)
    old = services.two_factor_recovery_codes_renew(user=member)
    new = services.two_factor_recovery_codes_renew(user=member)
    assert services.two_factor_verify(user=member, code=old[0]) is None
    StaticDevice.objects.get(user=member).throttle_reset()
    assert services.two_factor_verify(user=member, code=new[0]) is not None


def test_the_operator_admin_logs_in_through_the_same_two_steps(client):
    operator = UserFactory(is_staff=True, is_superuser=True)
    enable_two_factor(operator)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    _log_in(client, operator)
    assert client.get("/admin/").status_code == 302  # not logged in before the second step


def test_turning_it_off_needs_a_code(member):
    device = enable_two_factor(member)
    with pytest.raises(Exception, match="does not match"):
        services.two_factor_disable(user=member, code="000000")
    device.refresh_from_db()
    device.throttle_reset()
    services.two_factor_disable(user=member, code=code_for(device.key))
    assert not TOTPDevice.objects.filter(user=member).exists()


# --- the organisation's requirement ----------------------------------------------------------------------------------


def test_an_owner_must_use_two_factor_before_requiring_it(owner, tenant):
    membership = Membership.objects.get(user=owner)
    with pytest.raises(Conflict, match="your own account first"):
        services.tenant_require_two_factor(tenant=tenant, required=True, actor_membership=membership)
    tenant.refresh_from_db()
    assert not tenant.two_factor_required


def test_only_owners_set_the_requirement(admin_user, tenant):
    enable_two_factor(admin_user)
    client = verified_client(admin_user)
    response = client.post(reverse("tenant-two-factor"), {"required": "on"})
    assert response.status_code == 403
    tenant.refresh_from_db()
    assert not tenant.two_factor_required


def _require(tenant, owner):
    enable_two_factor(owner)
    client = verified_client(owner)
    response = client.post(reverse("tenant-two-factor"), {"required": "on"})
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.two_factor_required
    return client


def test_requiring_it_is_logged_once_and_counts_who_is_missing(owner, member, tenant):
    _require(tenant, owner)
    event = TenantEvent.objects.get(tenant=tenant, action=TenantEvent.Action.TWO_FACTOR)
    assert event.actor == owner
    assert "(1 still to enrol)" in event.message


def test_members_without_it_are_led_to_enrol_before_they_can_act(owner, member, member_client, tenant, launch_kit):
    _require(tenant, owner)
    for url in (reverse("home"), reverse("compute:instance-list"), reverse("api-tokens")):
        response = member_client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("two-factor-setup")), url
    response = member_client.post(reverse("compute:instance-launch"), {"name": "web-9"})
    assert response.status_code == 302 and response.url == reverse("two-factor-setup")
    # The set-up page itself, the security page and logging out stay open.
    assert member_client.get(reverse("two-factor-setup")).status_code == 200
    assert member_client.get(reverse("security")).status_code == 200
    # Once enrolled (this browser passes the second step by enrolling), everything works again.
    secret = member_client.session["two_factor_setup_secret"]
    member_client.post(reverse("two-factor-setup"), {"code": code_for(secret)})
    assert member_client.get(reverse("home")).status_code == 200


def test_members_with_it_confirm_a_code_in_an_older_session(owner, member, member_client, tenant):
    device = enable_two_factor(member)
    _require(tenant, owner)
    response = member_client.get(reverse("team"))
    assert response.url == reverse("two-factor-verify") + "?next=%2Fteam%2F"
    response = member_client.post(response.url, {"code": code_for(device.key), "next": "/team/"})
    assert response.url == "/team/"
    assert member_client.get(reverse("team")).status_code == 200


def test_other_organisations_of_the_member_are_not_affected(owner, member, member_client, tenant):
    _require(tenant, owner)
    own = MembershipFactory(user=member, role=Role.OWNER)
    member_client.post(reverse("tenant-switch"), {"tenant": str(own.tenant_id)})
    assert member_client.get(reverse("home")).status_code == 200


def test_tokens_of_members_without_it_are_refused_while_it_is_required(owner, member, tenant):
    _, secret = token_for(member, tenant)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/tenant/").status_code == 200
    owner_client = _require(tenant, owner)
    response = client.get("/api/v1/tenant/")
    assert_error(response, 403, "two_factor_required")
    assert "requires two-factor log-in" in response.json()["error"]["message"]
    assert member.email in response.json()["error"]["message"]
    # Logged once (not once per request), as a refusal of that token.
    client.get("/api/v1/instances/")
    refusals = TenantEvent.objects.filter(tenant=tenant, action=TenantEvent.Action.TOKEN_REFUSED)
    assert [(event.actor, event.result) for event in refusals] == [(member, "refused")]
    # The member turns it on: the same token works again.
    enable_two_factor(member)
    assert client.get("/api/v1/tenant/").status_code == 200
    # Lifted: no longer asked of anyone.
    owner_client.post(reverse("tenant-two-factor"), {})
    tenant.refresh_from_db()
    assert not tenant.two_factor_required


def test_the_browser_session_needs_the_second_step_for_the_api_too(owner, member, tenant):
    enable_two_factor(member)
    _require(tenant, owner)
    assert_error(login_client(member).get("/api/v1/tenant/"), 403, "two_factor_required")
    assert verified_client(member).get("/api/v1/tenant/").status_code == 200


def test_it_cannot_be_turned_off_while_an_organisation_requires_it(owner, tenant):
    _require(tenant, owner)
    device = TOTPDevice.objects.get(user=owner)
    with pytest.raises(Conflict, match="requires two-factor"):
        services.two_factor_disable(user=owner, code=code_for(device.key))
    assert TOTPDevice.objects.filter(user=owner).exists()


@pytest.fixture
def launch_kit(db):
    from tests.factories.compute import FlavorFactory, HostFactory, ImageFactory

    return HostFactory(), FlavorFactory(), ImageFactory()
