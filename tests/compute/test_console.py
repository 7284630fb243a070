"""The serial console panel: instance_console_output() and the compute:instance-console partial."""

import pytest
from django.urls import reverse

from compute import console
from compute.console import instance_console_output
from compute.drivers.base import DomainNotFound, TransientDriverError
from compute.models import InstanceState
from tests.conftest import login_client


def console_url(instance, **query) -> str:
    url = reverse("compute:instance-console", kwargs={"pk": instance.pk})
    return url + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")


class FakeDriver:
    def __init__(self, *, output="", error=None):
        self.output, self.error, self.calls = output, error, []

    def console_output(self, uuid, *, lines=100):
        self.calls.append((uuid, lines))
        if self.error is not None:
            raise self.error
        return self.output


def test_selector_reads_the_console_through_the_hosts_driver(running):
    instance = running

    text = instance_console_output(instance=instance, lines=2)

    assert text.splitlines()[-1] == f"{instance.name} login:"
    assert len(text.splitlines()) == 2


def test_selector_is_empty_for_an_unplaced_or_missing_machine(launch, monkeypatch):
    instance = launch()
    monkeypatch.setattr(console, "driver_for", lambda host: FakeDriver(error=DomainNotFound("gone")))
    assert instance_console_output(instance=instance) == ""

    instance.host = None
    assert instance_console_output(instance=instance) == ""


def test_selector_bounds_the_line_count(launch, monkeypatch):
    instance = launch()
    fake = FakeDriver(output="x")
    monkeypatch.setattr(console, "driver_for", lambda host: fake)

    instance_console_output(instance=instance, lines=0)
    instance_console_output(instance=instance, lines=10**6)

    assert [lines for _uuid, lines in fake.calls] == [1, console.MAX_CONSOLE_LINES]


def test_member_sees_the_console_refreshing_itself(running, member_client, django_assert_max_num_queries):
    instance = running

    with django_assert_max_num_queries(12):
        response = member_client.get(console_url(instance), HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = response.content.decode()
    assert f"{instance.name} login:" in body
    assert 'hx-trigger="every 3s"' in body
    assert reverse("compute:instance-console", kwargs={"pk": instance.pk}) in body


def test_viewer_may_read_the_console(launch, viewer):
    instance = launch()

    assert login_client(viewer).get(console_url(instance)).status_code == 200


def test_another_tenants_console_is_not_found(launch, outsider_client):
    instance = launch()

    assert outsider_client.get(console_url(instance)).status_code == 404


def test_console_is_read_only(launch, member_client):
    instance = launch()

    assert member_client.post(console_url(instance)).status_code == 405


def test_line_count_comes_from_the_query_and_bad_values_fall_back(launch, member_client, monkeypatch):
    instance = launch()
    fake = FakeDriver(output="one\ntwo")
    monkeypatch.setattr(console, "driver_for", lambda host: fake)

    assert member_client.get(console_url(instance, lines=5)).status_code == 200
    assert member_client.get(console_url(instance, lines="lots")).status_code == 200
    assert member_client.get(console_url(instance, lines=-3)).status_code == 200

    assert [lines for _uuid, lines in fake.calls] == [5, 100, 1]


def test_an_unreachable_host_is_explained_not_a_500(launch, member_client, monkeypatch):
    instance = launch()
    error = TransientDriverError("cannot connect to qemu+ssh://kvm-1/system")
    monkeypatch.setattr(console, "driver_for", lambda host: FakeDriver(error=error))

    response = member_client.get(console_url(instance))

    assert response.status_code == 200
    assert "cannot be read right now: cannot connect to qemu+ssh://kvm-1/system" in response.content.decode()


def test_stopped_instance_refreshes_slowly_and_deleted_one_not_at_all(launch, member_client):
    instance = launch()
    instance.state = InstanceState.STOPPED
    instance.save(update_fields=["state"])
    assert 'hx-trigger="every 15s"' in member_client.get(console_url(instance)).content.decode()

    instance.state = InstanceState.DELETED
    instance.save(update_fields=["state"])
    body = member_client.get(console_url(instance)).content.decode()

    assert "hx-trigger" not in body
    assert "The machine is gone." in body


@pytest.mark.parametrize("text", ["<script>alert(1)</script>"])
def test_console_text_is_escaped(launch, member_client, monkeypatch, text):
    instance = launch()
    monkeypatch.setattr(console, "driver_for", lambda host: FakeDriver(output=text))

    body = member_client.get(console_url(instance)).content.decode()

    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_the_detail_page_loads_the_console_panel(running, member_client):
    body = member_client.get(reverse("compute:instance-detail", kwargs={"pk": running.pk})).content.decode()

    assert 'id="instance-console"' in body
    assert f'hx-get="{reverse("compute:instance-console", kwargs={"pk": running.pk})}"' in body
    assert 'hx-trigger="load"' in body
