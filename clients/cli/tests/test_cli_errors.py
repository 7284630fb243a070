"""Exit codes and error messages: the API's code, message and field names, and what to do next."""

import json
import stat

import httpx
from fakeapi import error, page

from hangar_cli.errors import AUTH, NOT_FOUND, REFUSED, SERVER, USAGE


def test_field_errors_are_printed_with_their_field_names(api, hangar):
    api.on(
        "POST",
        "firewalls/",
        error(
            400,
            "invalid",
            "The request is not valid; see details.",
            {"name": ["This field may not be blank."], "rules": {"1": {"port_max": ["The range runs backwards."]}}},
        ),
    )
    result = hangar("firewalls", "create", "web", "--rule", "in tcp 22")
    assert result.exit_code == REFUSED
    assert "Error: The request is not valid; see details. (invalid, HTTP 400)" in result.stderr
    assert "  name: This field may not be blank." in result.stderr
    assert "  rules.1.port_max: The range runs backwards." in result.stderr


def test_json_mode_prints_the_error_shape_on_stderr(api, hangar):
    api.on("POST", "networks/", error(409, "cidr_overlaps", "10.0.0.0/24 overlaps default.", {"field": "cidr"}))
    result = hangar("--json", "networks", "create", "x", "--cidr", "10.0.0.0/24")
    assert result.exit_code == REFUSED
    assert result.stdout == ""
    assert json.loads(result.stderr)["error"]["code"] == "cidr_overlaps"


def test_a_bad_token_is_code_3_with_what_to_do(api, hangar):
    api.on("GET", "instances/", error(401, "authentication_failed", "Invalid token."))
    result = hangar("instances", "list")
    assert result.exit_code == AUTH
    assert "Invalid token." in result.stderr and "hangar login" in result.stderr


def test_a_read_only_token_writing_is_code_3(api, hangar):
    api.on("POST", "networks/", error(403, "permission_denied", "Read-only token."))
    result = hangar("networks", "create", "x", "--cidr", "10.9.0.0/24")
    assert result.exit_code == AUTH
    assert "read_write" in result.stderr


def test_quota_is_refused_with_code_1_and_a_hint(api, hangar):
    api.on("POST", "instances/", error(422, "quota_exceeded", "You would use 11 of 10 instances."))
    result = hangar("instances", "create", "web-1", "-f", "c1.micro", "-i", "Debian 12")
    assert result.exit_code == REFUSED
    assert "11 of 10" in result.stderr and "hangar quotas" in result.stderr


def test_not_found_by_id_is_code_4(api, hangar):
    api.on("GET", "instances/[0-9a-f-]+/", error(404, "not_found", "No Instance matches the given query."))
    assert hangar("instances", "show", "44444444-4444-4444-8444-000000000000").exit_code == NOT_FOUND


def test_server_errors_and_unreachable_servers_are_code_6(api, hangar, monkeypatch):
    api.on("GET", "instances/", httpx.Response(500, text="<html>oops</html>"))
    broken = hangar("instances", "list")
    assert broken.exit_code == SERVER
    assert "without an error body" in broken.stderr

    def refuse(request):
        raise httpx.ConnectError("Connection refused", request=request)

    monkeypatch.setattr("hangar_cli.client.time.sleep", lambda seconds: None)
    api.on("GET", "instances/", refuse)
    down = hangar("instances", "list")
    assert down.exit_code == SERVER
    assert "Cannot reach http://hangar.test" in down.stderr and "HANGAR_URL" in down.stderr


def test_a_503_with_retry_after_is_retried(api, hangar, monkeypatch):
    slept = []
    monkeypatch.setattr("hangar_cli.client.time.sleep", slept.append)
    busy = httpx.Response(
        503, headers={"Retry-After": "1"}, json={"error": {"code": "service_unavailable", "message": "", "details": {}}}
    )
    api.on("GET", "networks/", [busy, page([])])
    assert hangar("networks", "list").exit_code == 0
    assert slept == [1]


def test_usage_errors_are_code_2(api, hangar):
    assert hangar("instances", "create").exit_code == USAGE
    assert hangar("instances", "create", "x", "-f", "a", "-i", "b", "--label", "novalue").exit_code == USAGE
    assert hangar("no-such-command").exit_code == USAGE


def test_without_url_or_token_it_says_how_to_log_in(api, hangar, monkeypatch):
    monkeypatch.delenv("HANGAR_TOKEN")
    result = hangar("instances", "list")
    assert result.exit_code == AUTH
    assert "No API token." in result.stderr and "hangar login" in result.stderr


def test_login_checks_the_token_and_writes_a_private_profile(api, hangar, monkeypatch, tmp_path):
    monkeypatch.delenv("HANGAR_URL")
    monkeypatch.delenv("HANGAR_TOKEN")
    api.on("GET", "tenant/", {"name": "Acme", "role": "owner"})
    result = hangar("login", "--url", "http://hangar.test/api/v1/", "--token", "hgr_staging", "--profile", "staging")
    assert result.exit_code == 0, result.stderr
    assert "as owner of Acme" in result.stderr
    path = tmp_path / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert 'current_profile = "staging"' in path.read_text()
    assert api.requests[-1].headers["Authorization"] == "Bearer hgr_staging"

    # The profile is used from now on; the environment still wins over it.
    api.on("GET", "networks/", page([]))
    assert hangar("networks", "list").exit_code == 0
    assert api.requests[-1].url.host == "hangar.test"
    assert api.requests[-1].headers["Authorization"] == "Bearer hgr_staging"
    monkeypatch.setenv("HANGAR_TOKEN", "hgr_env")
    hangar("networks", "list")
    assert api.requests[-1].headers["Authorization"] == "Bearer hgr_env"

    listed = hangar("profiles")
    assert "staging" in listed.stdout and "hgr_" not in listed.stdout
    assert hangar("--profile", "prod", "networks", "list").exit_code == USAGE
    assert hangar("logout", "--profile", "staging").exit_code == 0
    assert "staging" not in path.read_text()


def test_login_with_a_bad_token_saves_nothing(api, hangar, tmp_path):
    api.on("GET", "tenant/", error(401, "authentication_failed", "Invalid token."))
    assert hangar("login", "--token", "hgr_wrong").exit_code == AUTH
    assert not (tmp_path / "config.toml").exists()


def test_a_broken_config_file_is_named(api, hangar, monkeypatch, tmp_path):
    monkeypatch.delenv("HANGAR_TOKEN")
    (tmp_path / "config.toml").write_text("[profiles.default\nurl = 1")
    result = hangar("instances", "list")
    assert result.exit_code == USAGE
    assert "config.toml is not valid TOML" in result.stderr
