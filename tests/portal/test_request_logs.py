"""Quiet structured logs: one line per request and per task with the request id, tenant and user; JSON when asked;
the request id in the response header and on error pages."""

import json
import logging

import pytest
from django.test import Client
from django.urls import path

from portal.logging import ContextFilter, JsonFormatter
from portal.tasks import heartbeat


def test_every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept(db):
    made = Client().get("/healthz")
    kept = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-0123456789abcdef")
    replaced = Client().get("/healthz", HTTP_X_REQUEST_ID="<script>")

    assert len(made["X-Request-ID"]) == 32
    assert kept["X-Request-ID"] == "lb-0123456789abcdef"
    assert replaced["X-Request-ID"] != "<script>" and len(replaced["X-Request-ID"]) == 32


def test_one_line_per_request_names_the_request_tenant_and_user(owner_client, owner, tenant, caplog):
    with caplog.at_level(logging.INFO, logger="hangar.request"):
        response = owner_client.get("/team/", HTTP_X_REQUEST_ID="req-team-000001")

    lines = [record for record in caplog.records if record.name == "hangar.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line.getMessage().startswith(f"GET /team/ {response.status_code} ")
    assert (line.request_id, line.tenant, line.user) == ("req-team-000001", str(tenant.pk), str(owner.pk))
    as_json = json.loads(JsonFormatter().format(line))
    assert as_json["request_id"] == "req-team-000001" and as_json["tenant"] == str(tenant.pk)
    assert as_json["status"] == response.status_code and as_json["route"] == "team/"


def test_an_api_request_line_names_the_token(member, tenant, caplog):
    from tests.api.conftest import token_for

    token, secret = token_for(member, tenant)
    with caplog.at_level(logging.INFO, logger="hangar.request"):
        Client().get("/api/v1/instances/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    line = next(record for record in caplog.records if record.name == "hangar.request")
    assert (line.token, line.user, line.tenant) == (token.prefix, str(member.pk), str(tenant.pk))


def test_one_line_per_task_with_its_outcome(db, caplog):
    from compute.tasks import reconcile

    with caplog.at_level(logging.INFO, logger="hangar.task"):
        reconcile.delay()
        heartbeat.delay(sent_at=None)  # every 30 s all day: at DEBUG
    lines = [record for record in caplog.records if record.name == "hangar.task"]
    assert [line.getMessage().split(" in ")[0] for line in lines] == ["compute.tasks.reconcile succeeded"]
    line = lines[0]
    assert line.outcome == "succeeded"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "inside", None, None)
    assert ContextFilter().filter(record) and record.request_id == "-"


def test_the_not_found_page_shows_the_request_id(owner_client):
    response = owner_client.get("/no/such/page/", HTTP_X_REQUEST_ID="req-missing-0001")
    assert response.status_code == 404
    assert "req-missing-0001" in response.content.decode()


def _boom(request):
    raise RuntimeError("boom")


urlpatterns = [path("boom", _boom)]
handler500 = "portal.views_ops.server_error"


def test_the_server_error_page_shows_the_request_id(db, settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/boom", HTTP_X_REQUEST_ID="req-boom-00000001")
    assert response.status_code == 500
    assert response["X-Request-ID"] == "req-boom-00000001"
    assert "req-boom-00000001" in response.content.decode()


@pytest.mark.parametrize("value", ["xml", "JSON "])
def test_a_log_format_other_than_plain_or_json_stops_start_up(tmp_path, value):
    from tests.portal.test_settings import _check

    result = _check(tmp_path, LOG_FORMAT=value)
    assert result.returncode != 0 and "LOG_FORMAT" in result.stderr


def test_json_lines_when_asked(tmp_path):
    from tests.portal.test_settings import _manage

    result = _manage(
        tmp_path, "shell", "-c", "import logging; logging.getLogger('x').warning('hello')", LOG_FORMAT="json"
    )
    line = json.loads([text for text in result.stderr.splitlines() if text.startswith("{")][-1])
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "x", "hello")


def test_static_files_health_checks_and_scrapes_log_at_debug(db, caplog):
    with caplog.at_level(logging.DEBUG, logger="hangar.request"):
        Client().get("/static/css/hangar.css")
        Client().get("/metrics")
    assert {record.levelname for record in caplog.records if record.name == "hangar.request"} == {"DEBUG"}
