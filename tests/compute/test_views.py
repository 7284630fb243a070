"""The compute dashboard: launch, list, detail, every action, SSH keys, roles and bad input."""

import re
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import has_vary_header

from compute.models import EventAction, Instance, InstanceEvent, InstanceState, SSHKey
from tenants.models import EventResult, Quota
from tenants.roles import Role
from tests.conftest import login_client
from tests.factories import MembershipFactory, TenantFactory
from tests.factories.compute import (
    FlavorFactory,
    ImageFactory,
    InstanceEventFactory,
    InstanceFactory,
    SSHKeyFactory,
    new_public_key,
)

LAUNCH = reverse("compute:instance-launch")
LIST = reverse("compute:instance-list")
KEYS = reverse("compute:sshkey-list")


def _url(name, instance):
    return reverse(f"compute:{name}", kwargs={"pk": instance.pk})


@pytest.fixture
def running(launch, django_capture_on_commit_callbacks):
    """An instance launched through the service and built by the (eager) worker task: running, with a domain."""
    with django_capture_on_commit_callbacks(execute=True):
        instance = launch(name="web-1")
    instance.refresh_from_db()
    assert instance.state == InstanceState.RUNNING
    return instance


@pytest.fixture
def stopped(running, member, django_capture_on_commit_callbacks):
    from compute.services import instance_stop

    with django_capture_on_commit_callbacks(execute=True):
        instance_stop(instance=running, user=member)
    running.refresh_from_db()
    assert running.state == InstanceState.STOPPED
    return running


def _post(client, url, data, callbacks):
    """POST with on-commit callbacks (the eager worker tasks) run when the request's transaction commits."""
    with callbacks(execute=True):
        return client.post(url, data)


# --- Launch -----------------------------------------------------------------------------------------------------


def test_launch_form_shows_sizes_with_prices_images_by_os_keys_and_quota(member_client, flavor, image, key, host):
    ImageFactory(name="Ubuntu 24.04", os="Ubuntu", version="24.04")
    response = member_client.get(LAUNCH)
    assert response.status_code == 200
    body = response.content.decode()
    assert "s2.medium" in body
    assert "12.00 EUR" in body  # monthly price
    assert "0.0179 EUR" in body  # 12.00 / 672 per hour, shown to 4 places
    assert "<h3>Debian</h3>" in body and "<h3>Ubuntu</h3>" in body
    assert key.fingerprint in body
    assert "Quota headroom" in body
    assert "js/launch.js" in body
    # The tenant's only key is ticked by default: a machine without one cannot be logged in to.
    assert f'value="{key.pk}" checked' in body


def test_launch_from_the_form_is_pending_then_running(
    member_client, tenant, member, flavor, image, key, host, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            LAUNCH, {"name": "web-1", "flavor": flavor.pk, "image": image.pk, "keys": [key.pk]}
        )
        instance = Instance.objects.get(tenant=tenant, name="web-1")
        assert instance.state == InstanceState.PENDING  # until the transaction commits and the worker runs
    assert response.status_code == 302
    assert response.url == _url("instance-detail", instance)
    instance.refresh_from_db()
    assert instance.state == InstanceState.RUNNING
    assert instance.created_by == member
    assert instance.key_fingerprints == [key.fingerprint]
    detail = member_client.get(response.url)
    assert b"is being launched" not in detail.content  # it runs: no stale "being launched" note


def test_the_instance_page_shows_launch_progress_until_the_machine_runs(member_client, tenant, flavor, image):
    instance = InstanceFactory(tenant=tenant, name="web-1", flavor=flavor, image=image, state=InstanceState.BUILDING)
    page = member_client.get(_url("instance-detail", instance)).content.decode()
    assert "web-1 is being launched" in page and 'aria-current="step">Building' in page
    Instance.objects.filter(pk=instance.pk).update(state=InstanceState.RUNNING)
    poll = member_client.get(_url("instance-detail", instance), headers={"HX-Request": "true"}).content.decode()
    assert "being launched" not in poll and "hx-trigger" not in poll


def test_flavors_beyond_the_quota_headroom_are_disabled_with_the_reason(member_client, tenant, flavor, image, host):
    Quota.objects.filter(tenant=tenant).update(vcpus=1)
    body = member_client.get(LAUNCH).content.decode()
    assert "Needs 2 vCPUs; 1 left in your quota." in body
    assert f'value="{flavor.pk}" disabled' in body


def test_quota_refusal_is_shown_on_the_form(member_client, tenant, flavor, image, host):
    Quota.objects.filter(tenant=tenant).update(instances=0)
    response = member_client.post(LAUNCH, {"name": "web-1", "flavor": flavor.pk, "image": image.pk})
    assert response.status_code == 422
    assert "quota of 0 instances" in response.content.decode()
    assert not Instance.objects.filter(tenant=tenant).exists()


def test_a_tenant_on_hold_cannot_launch_and_is_told_why(member_client, tenant, flavor, image, host):
    tenant.status = tenant.Status.HOLD
    tenant.save()
    response = member_client.post(LAUNCH, {"name": "web-1", "flavor": flavor.pk, "image": image.pk})
    assert response.status_code == 422
    assert "is on hold" in response.content.decode()
    assert not Instance.objects.filter(tenant=tenant).exists()


def test_capacity_refusal_is_shown_on_the_form(member_client, tenant, image, host):
    huge = FlavorFactory(name="x64.huge", vcpus=2, ram_mib=4096, disk_gib=5000)
    response = member_client.post(LAUNCH, {"name": "web-1", "flavor": huge.pk, "image": image.pk})
    assert response.status_code == 422
    assert b"form-errors" in response.content
    assert not Instance.objects.filter(tenant=tenant).exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("flavor", lambda: uuid.uuid4(), "That size is not available"),
        ("flavor", lambda: "not-a-uuid", "That size is not available"),
        ("image", lambda: uuid.uuid4(), "That image is not available"),
        ("image", lambda: "42", "That image is not available"),
        ("name", lambda: "a" * 64, "too long: at most 63"),
        ("name", lambda: "-bad-", "letters, digits and hyphens"),
        ("name", lambda: "web_1", "letters, digits and hyphens"),
        ("keys", lambda: [SSHKeyFactory(tenant=TenantFactory()).pk], "not one of yours"),
        ("keys", lambda: ["garbage"], "not one of yours"),
    ],
)
def test_bad_launch_input_is_a_form_error(member_client, tenant, flavor, image, host, field, value, message):
    data = {"name": "web-1", "flavor": flavor.pk, "image": image.pk}
    data[field] = value()
    response = member_client.post(LAUNCH, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Instance.objects.filter(tenant=tenant).exists()


def test_image_too_large_for_the_size_is_a_form_error(member_client, tenant, flavor, host):
    fat = ImageFactory(name="Windows-ish", os="Other", version="1", min_disk_gib=100)
    response = member_client.post(LAUNCH, {"name": "web-1", "flavor": flavor.pk, "image": fat.pk})
    assert response.status_code == 400
    assert "needs at least 100 GiB" in response.content.decode()


def test_taken_name_is_a_form_error_on_the_name(member_client, running, flavor, image):
    response = member_client.post(LAUNCH, {"name": "WEB-1", "flavor": flavor.pk, "image": image.pk})
    assert response.status_code == 400
    assert "already have an instance called WEB-1" in response.content.decode()


def test_add_a_key_inline_with_htmx_returns_the_picker_with_the_new_key_ticked(member_client, tenant, key):
    response = member_client.post(
        reverse("compute:launch-key-add"),
        {"keys": [key.pk], "newkey-name": "desktop", "newkey-public_key": new_public_key()},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    added = SSHKey.objects.get(tenant=tenant, name="desktop")
    body = response.content.decode()
    assert 'id="key-picker"' in body and "<html" not in body
    assert f'value="{added.pk}" checked' in body
    assert f'value="{key.pk}" checked' in body  # keys ticked before stay ticked


def test_add_a_key_inline_with_an_invalid_key_shows_the_error_in_the_picker(member_client, tenant):
    response = member_client.post(
        reverse("compute:launch-key-add"),
        {"newkey-name": "bad", "newkey-public_key": "ssh-rsa not-a-key"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not SSHKey.objects.filter(tenant=tenant).exists()


def test_add_a_key_inline_without_javascript_returns_to_the_launch_form(member_client, tenant):
    response = member_client.post(
        reverse("compute:launch-key-add"), {"newkey-name": "desktop", "newkey-public_key": new_public_key()}
    )
    assert response.status_code == 302 and response.url == LAUNCH
    assert SSHKey.objects.filter(tenant=tenant, name="desktop").exists()


# --- List -------------------------------------------------------------------------------------------------------


def test_list_shows_instances_with_badges_and_row_actions(member_client, tenant):
    InstanceFactory(tenant=tenant, name="alpha", state=InstanceState.RUNNING)
    InstanceFactory(tenant=tenant, name="beta", state=InstanceState.STOPPED)
    InstanceFactory(tenant=tenant, name="gone", state=InstanceState.DELETED)
    InstanceFactory(name="other-tenants")
    body = member_client.get(LIST).content.decode()
    assert "alpha" in body and "beta" in body
    assert "gone" not in body and "other-tenants" not in body
    assert 'class="badge ok"' in body and 'class="badge off"' in body
    assert "/stop/" in body and "/start/" in body
    assert "every 2s" not in body and 'hx-trigger="every 15s"' in body  # nothing transitional: only the cheap check


def test_list_polls_only_while_something_is_transitional(member_client, tenant):
    instance = InstanceFactory(tenant=tenant, name="alpha", state=InstanceState.BUILDING)
    body = member_client.get(LIST).content.decode()
    assert 'hx-trigger="every 2s"' in body
    partial = member_client.get(LIST, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert b'id="instance-table"' in partial.content and b"<html" not in partial.content
    assert b"every 2s" in partial.content and b"badge busy" in partial.content
    Instance.objects.filter(pk=instance.pk).update(state=InstanceState.RUNNING)
    partial = member_client.get(LIST, headers={"HX-Request": "true"})
    assert b"every 2s" not in partial.content  # the swapped-in table no longer polls every 2 s
    assert b"badge ok" in partial.content


def _quiet_check_url(body: str) -> str:
    return re.search(r'hx-get="([^"]+)" hx-trigger="every 15s"', body).group(1).replace("&amp;", "&")


def test_a_quiet_list_learns_of_a_launch_elsewhere_with_one_cheap_query(
    member_client, tenant, django_assert_max_num_queries
):
    InstanceFactory(tenant=tenant, name="alpha", state=InstanceState.RUNNING)
    check = _quiet_check_url(member_client.get(LIST + "?ordering=name").content.decode())
    assert "ordering=name" in check and "unless_version=" in check
    with django_assert_max_num_queries(6):  # session, user, membership, tenant …, and one aggregate
        unchanged = member_client.get(check, headers={"HX-Request": "true"})
    assert unchanged.status_code == 204 and unchanged.content == b""

    InstanceFactory(tenant=tenant, name="beta", state=InstanceState.PENDING)  # launched in another tab
    changed = member_client.get(check, headers={"HX-Request": "true"}).content.decode()
    assert "beta" in changed and "every 2s" in changed and "unless_version" not in changed

    # Every service that changes a machine saves its updated_at with the change, as these do.
    Instance.objects.filter(name="beta").update(state=InstanceState.RUNNING, updated_at=timezone.now())
    check = _quiet_check_url(member_client.get(LIST).content.decode())
    Instance.objects.filter(name="beta").update(state=InstanceState.STOPPING, updated_at=timezone.now())  # from the API
    assert member_client.get(check, headers={"HX-Request": "true"}).status_code == 200


def test_list_filters_by_state_and_name(member_client, tenant):
    InstanceFactory(tenant=tenant, name="web-a", state=InstanceState.RUNNING)
    InstanceFactory(tenant=tenant, name="web-b", state=InstanceState.STOPPED)
    InstanceFactory(tenant=tenant, name="db-a", state=InstanceState.RUNNING)

    def listed(query) -> set[str]:
        body = member_client.get(LIST, query).content.decode()
        return {name for name in ("web-a", "web-b", "db-a") if f"<strong>{name}</strong>" in body}

    assert listed({"state": "running"}) == {"web-a", "db-a"}
    assert listed({"name": "WEB"}) == {"web-a", "web-b"}
    assert listed({"state": "stopped", "name": "web"}) == {"web-b"}
    response = member_client.get(LIST, {"state": "bogus"})
    assert response.status_code == 400 and b"These filters could not be applied" in response.content
    assert b"<strong>web-a</strong>" not in response.content


def test_list_paginates(member_client, tenant):
    for number in range(25):
        InstanceFactory(tenant=tenant, name=f"node-{number:02d}")
    first = member_client.get(LIST).content.decode()
    assert "Page 1 of 2" in first and "25 in all" in first
    second = member_client.get(LIST, {"page": 2}).content.decode()
    assert "Page 2 of 2" in second
    assert member_client.get(LIST, {"page": 9}).status_code == 404
    # A poll of a page that emptied meanwhile gets the last page, not an error on every poll.
    polled = member_client.get(LIST, {"page": 9}, headers={"HX-Request": "true"})
    assert polled.status_code == 200 and "Page 2 of 2" in polled.content.decode()


def test_list_takes_per_page_like_the_api(member_client, tenant):
    for number in range(25):
        InstanceFactory(tenant=tenant, name=f"node-{number:02d}")
    assert member_client.get(LIST, {"per_page": 25}).content.decode().count('<tr id="instance-') == 25
    assert "Page 1 of 3" in member_client.get(LIST, {"per_page": 10}).content.decode()
    for bad in ("0", "201", "ten"):
        assert "Page 1 of 2" in member_client.get(LIST, {"per_page": bad}).content.decode()


def test_tenants_never_see_host_names_but_staff_do(member_client, member, tenant):
    instance = InstanceFactory(tenant=tenant, name="alpha")
    host_name = instance.host.name
    assert host_name not in member_client.get(LIST).content.decode()
    assert host_name not in member_client.get(_url("instance-detail", instance)).content.decode()
    member.is_staff = True
    member.save()
    assert host_name in member_client.get(LIST).content.decode()
    assert host_name in member_client.get(_url("instance-detail", instance)).content.decode()


# --- Detail -----------------------------------------------------------------------------------------------------


def test_detail_shows_specs_keys_and_the_event_timeline(member_client, running, flavor, image, key):
    body = member_client.get(_url("instance-detail", running)).content.decode()
    assert running.name in body and flavor.name in body and image.name in body
    assert running.private_ip and running.private_ip in body
    assert 'class="timeline"' in body
    assert "Launch</strong> requested" in body and "Build</strong> succeeded" in body
    assert "rename-dialog" in body and "delete-dialog" in body
    assert f'data-must-equal="{running.name}"' in body
    assert "hx-trigger" not in body.split('id="instance-live"')[1].split(">")[0]  # running: no polling


def test_detail_shows_the_launch_keys_even_after_the_key_is_deleted(
    member_client, tenant, member, flavor, image, host, django_capture_on_commit_callbacks
):
    key = SSHKeyFactory(tenant=tenant, name="old-laptop")
    _post(
        member_client,
        LAUNCH,
        {"name": "web-1", "flavor": flavor.pk, "image": image.pk, "keys": [key.pk]},
        django_capture_on_commit_callbacks,
    )
    fingerprint = key.fingerprint
    member_client.post(_url("sshkey-delete", key))
    instance = Instance.objects.get(tenant=tenant, name="web-1")
    assert instance.state == InstanceState.RUNNING
    body = member_client.get(_url("instance-detail", instance)).content.decode()
    assert "old-laptop" in body and fingerprint in body


def test_detail_polls_while_transitional(member_client, tenant):
    instance = InstanceFactory(tenant=tenant, state=InstanceState.REBOOTING)
    body = member_client.get(_url("instance-detail", instance)).content.decode()
    assert 'hx-trigger="every 2s"' in body
    partial = member_client.get(_url("instance-detail", instance), headers={"HX-Request": "true"})
    assert b'id="instance-live"' in partial.content and b"<html" not in partial.content
    Instance.objects.filter(pk=instance.pk).update(state=InstanceState.RUNNING)
    partial = member_client.get(_url("instance-detail", instance), headers={"HX-Request": "true"})
    assert b"hx-trigger" not in partial.content


@pytest.mark.parametrize(("method", "page"), [("get", "list"), ("get", "detail"), ("post", "key-add")])
def test_pages_that_answer_htmx_with_a_fragment_vary_on_hx_request(member_client, tenant, method, page):
    """One URL, two bodies: a cache must never serve the fragment as the page, or the page into a swap."""
    instance = InstanceFactory(tenant=tenant, name="alpha", state=InstanceState.BUILDING)
    url = {"list": LIST, "detail": _url("instance-detail", instance), "key-add": reverse("compute:launch-key-add")}
    data = {"newkey-name": "k", "newkey-public_key": "not-a-key"} if method == "post" else None
    send = getattr(member_client, method)

    full = send(url[page], data)
    partial = send(url[page], data, headers={"HX-Request": "true"})

    assert full.content != partial.content
    for response in (full, partial):
        assert response.status_code in (200, 302)
        assert has_vary_header(response, "HX-Request")


def test_deleted_instance_detail_stays_readable_without_actions(member_client, tenant):
    instance = InstanceFactory(tenant=tenant, state=InstanceState.DELETED, private_ip=None)
    InstanceEventFactory(instance=instance, action=EventAction.DELETE, result=EventResult.SUCCEEDED)
    body = member_client.get(_url("instance-detail", instance)).content.decode()
    assert "was deleted" in body and "Delete</strong> succeeded" in body
    assert "delete-dialog" not in body and "/stop/" not in body


def test_another_tenants_instance_is_a_404(outsider_client, tenant):
    instance = InstanceFactory(tenant=tenant)
    assert outsider_client.get(_url("instance-detail", instance)).status_code == 404
    assert outsider_client.post(_url("instance-stop", instance)).status_code == 404


# --- Actions ----------------------------------------------------------------------------------------------------


def test_stop_then_start_then_reboot_from_the_dashboard(member_client, running, django_capture_on_commit_callbacks):
    response = _post(member_client, _url("instance-stop", running), {}, django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response.url == _url("instance-detail", running)
    running.refresh_from_db()
    assert running.state == InstanceState.STOPPED

    _post(member_client, _url("instance-start", running), {}, django_capture_on_commit_callbacks)
    running.refresh_from_db()
    assert running.state == InstanceState.RUNNING

    _post(member_client, _url("instance-reboot", running), {}, django_capture_on_commit_callbacks)
    running.refresh_from_db()
    assert running.state == InstanceState.RUNNING
    actions = set(InstanceEvent.objects.filter(instance=running, result=EventResult.SUCCEEDED).values_list("action"))
    assert {(EventAction.STOP,), (EventAction.START,), (EventAction.REBOOT,)} <= actions


def test_row_actions_return_to_the_filtered_list(member_client, running, django_capture_on_commit_callbacks):
    back = f"{LIST}?state=running"
    response = _post(member_client, _url("instance-stop", running), {"next": back}, django_capture_on_commit_callbacks)
    assert response.url == back
    response = member_client.post(_url("instance-start", running), {"next": "https://evil.example/"})
    assert response.url == _url("instance-detail", running)


def test_a_refused_action_is_a_flash_message_not_an_error_page(member_client, running):
    response = member_client.post(_url("instance-start", running), follow=True)
    assert response.status_code == 200
    assert "only a stopped instance can be started" in response.content.decode()
    running.refresh_from_db()
    assert running.state == InstanceState.RUNNING


def test_force_stop_is_offered_while_stopping(member_client, tenant):
    instance = InstanceFactory(tenant=tenant, state=InstanceState.STOPPING)
    body = member_client.get(_url("instance-detail", instance)).content.decode()
    assert "Force stop" in body


def test_resize_form_shows_price_differences_and_resizes(
    member_client, stopped, flavor, big_flavor, django_capture_on_commit_callbacks
):
    smaller_disk = FlavorFactory(name="tiny", vcpus=1, ram_mib=1024, disk_gib=10, monthly_price="4.00")
    body = member_client.get(_url("instance-detail", stopped)).content.decode()
    resize_section = body.split('id="resize"')[1]
    assert big_flavor.name in resize_section
    assert smaller_disk.name not in resize_section  # disks never shrink
    # s2.medium and s4.large both cost 12.00 by default; make the difference visible
    big_flavor.monthly_price = "24.00"
    big_flavor.save()
    body = member_client.get(_url("instance-detail", stopped)).content.decode()
    assert "+12.00 EUR / month" in body
    assert "+0.0179 EUR / hour" in body  # 24/672 - 12/672 = 0.017857… per hour

    response = _post(
        member_client, _url("instance-resize", stopped), {"flavor": big_flavor.pk}, django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    stopped.refresh_from_db()
    assert stopped.state == InstanceState.STOPPED
    assert stopped.flavor == big_flavor


def test_resize_is_not_offered_while_running(member_client, running):
    body = member_client.get(_url("instance-detail", running)).content.decode()
    assert 'id="resize"' not in body and "stop it first" in body
    response = member_client.post(_url("instance-resize", running), {"flavor": FlavorFactory(disk_gib=80).pk})
    assert response.status_code == 302
    running.refresh_from_db()
    assert running.state == InstanceState.RUNNING


def test_resize_bad_input_is_a_form_error(member_client, stopped):
    response = member_client.post(_url("instance-resize", stopped), {"flavor": uuid.uuid4()})
    assert response.status_code == 400
    assert "That size is not available" in response.content.decode()
    response = member_client.post(_url("instance-resize", stopped), {"flavor": stopped.flavor.pk})
    assert response.status_code == 400
    assert "already is" in response.content.decode()


def test_rename(member_client, running):
    response = member_client.post(_url("instance-rename", running), {"name": "web-renamed"})
    assert response.status_code == 302
    running.refresh_from_db()
    assert running.name == "web-renamed"


def test_rename_bad_input_reopens_the_dialog_with_the_error(member_client, running):
    response = member_client.post(_url("instance-rename", running), {"name": "x" * 64})
    assert response.status_code == 400
    body = response.content.decode()
    assert '<dialog id="rename-dialog" open data-reopen-modal>' in body and "at most 63 characters" in body
    running.refresh_from_db()
    assert running.name == "web-1"


def test_renaming_an_instance_being_deleted_is_refused_with_a_message(member_client, tenant):
    instance = InstanceFactory(tenant=tenant, name="going", state=InstanceState.DELETING)
    response = member_client.post(_url("instance-rename", instance), {"name": "staying"}, follow=True)
    assert response.status_code == 200
    assert "going is deleting" in response.content.decode()
    instance.refresh_from_db()
    assert instance.name == "going"


def test_delete_needs_the_typed_name(member_client, running, django_capture_on_commit_callbacks):
    response = member_client.post(_url("instance-delete", running), {"confirm_name": "web-2"})
    assert response.status_code == 400
    assert "Type web-1 exactly" in response.content.decode()
    response = member_client.post(_url("instance-delete", running), {})
    assert response.status_code == 400
    running.refresh_from_db()
    assert running.state == InstanceState.RUNNING

    response = _post(
        member_client, _url("instance-delete", running), {"confirm_name": "web-1"}, django_capture_on_commit_callbacks
    )
    assert response.status_code == 302 and response.url == LIST
    running.refresh_from_db()
    assert running.state == InstanceState.DELETED
    table = member_client.get(LIST).content.decode().split('id="instance-table"')[1]
    assert "web-1" not in table


def test_delete_confirmation_page_works_without_javascript(member_client, running):
    response = member_client.get(_url("instance-delete", running))
    assert response.status_code == 200
    assert f'data-must-equal="{running.name}"' in response.content.decode()


# --- SSH keys ---------------------------------------------------------------------------------------------------


def test_keys_page_lists_fingerprints_and_explains_that_instances_keep_their_copy(member_client, key):
    body = member_client.get(KEYS).content.decode()
    assert key.name in body and key.fingerprint in body
    assert "never touches a running machine" in body


def test_add_and_delete_a_key(member_client, tenant):
    response = member_client.post(KEYS, {"name": "laptop", "public_key": new_public_key()})
    assert response.status_code == 302
    key = SSHKey.objects.get(tenant=tenant, name="laptop")
    assert key.fingerprint.startswith("SHA256:")
    response = member_client.post(_url("sshkey-delete", key))
    assert response.status_code == 302
    assert not SSHKey.objects.filter(pk=key.pk).exists()


@pytest.mark.parametrize(
    ("public_key", "message"),
    [
        ("garbage", "type and the key itself"),
        ("ssh-ed25519 !!!notbase64", "not valid base64"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
        ("", "This field is required"),
    ],
)
def test_invalid_key_is_a_form_error(member_client, tenant, public_key, message):
    response = member_client.post(KEYS, {"name": "bad", "public_key": public_key})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SSHKey.objects.filter(tenant=tenant).exists()


def test_duplicate_key_is_a_form_error(member_client, key):
    response = member_client.post(KEYS, {"name": "again", "public_key": key.public_key})
    assert response.status_code == 400
    assert f"already saved as {key.name}" in response.content.decode()


def test_key_name_too_long_is_a_form_error(member_client):
    response = member_client.post(KEYS, {"name": "k" * 101, "public_key": new_public_key()})
    assert response.status_code == 400
    assert "at most 100 characters" in response.content.decode()


# --- Roles ------------------------------------------------------------------------------------------------------


@pytest.fixture(params=[Role.VIEWER, Role.BILLING])
def read_only_client(request, tenant):
    return login_client(MembershipFactory(tenant=tenant, role=request.param).user)


def test_read_only_roles_see_everything_but_no_buttons(read_only_client, tenant, key):
    running = InstanceFactory(tenant=tenant, name="alpha", state=InstanceState.RUNNING)
    stopped = InstanceFactory(tenant=tenant, name="beta", state=InstanceState.STOPPED)
    listing = read_only_client.get(LIST)
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "alpha" in body and "beta" in body
    assert "Launch instance" not in body and "/stop/" not in body and "/start/" not in body and "/delete/" not in body
    for instance in (running, stopped):
        detail = read_only_client.get(_url("instance-detail", instance)).content.decode()
        assert instance.name in detail
        for marker in ("/stop/", "/start/", "/reboot/", "/resize/", "/rename/", "/delete/", "<dialog"):
            assert marker not in detail
    keys = read_only_client.get(KEYS).content.decode()
    assert key.fingerprint in keys
    assert "/delete/" not in keys and "Add a key" not in keys


def test_read_only_roles_are_refused_every_change(read_only_client, tenant, key, flavor, image, host):
    instance = InstanceFactory(tenant=tenant, name="alpha", state=InstanceState.RUNNING)
    stopped = InstanceFactory(tenant=tenant, name="beta", state=InstanceState.STOPPED)
    posts = [
        (LAUNCH, {"name": "web-9", "flavor": flavor.pk, "image": image.pk}),
        (reverse("compute:launch-key-add"), {"newkey-name": "x", "newkey-public_key": new_public_key()}),
        (KEYS, {"name": "x", "public_key": new_public_key()}),
        (_url("sshkey-delete", key), {}),
        (_url("instance-stop", instance), {}),
        (_url("instance-reboot", instance), {}),
        (_url("instance-start", stopped), {}),
        (_url("instance-resize", stopped), {"flavor": flavor.pk}),
        (_url("instance-rename", instance), {"name": "renamed"}),
        (_url("instance-delete", instance), {"confirm_name": "alpha"}),
    ]
    for url, data in posts:
        assert read_only_client.post(url, data).status_code == 403, url
    assert read_only_client.get(LAUNCH).status_code == 403
    assert read_only_client.get(_url("instance-delete", instance)).status_code == 403
    instance.refresh_from_db()
    stopped.refresh_from_db()
    assert (instance.state, instance.name, stopped.state) == (InstanceState.RUNNING, "alpha", InstanceState.STOPPED)
    assert SSHKey.objects.filter(tenant=tenant).count() == 1
    assert not Instance.objects.filter(tenant=tenant, name="web-9").exists()


def test_nav_shows_instances_and_keys_to_every_role(read_only_client):
    body = read_only_client.get(reverse("home")).content.decode()
    assert f'href="{LIST}"' in body and f'href="{KEYS}"' in body
