"""Redis (the broker and the cache, one server as README lays it out) stopped while users launch machines."""

import http.cookiejar
import re
import urllib.parse
import urllib.request

import pytest

pytestmark = [pytest.mark.fault, pytest.mark.slow]


class Browser:
    """A dashboard session: logs in through the form, keeps its cookies."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base_url + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def log_in(self, email: str, password: str) -> None:
        _, page = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": email, "password": password})
        request = urllib.request.Request(self.base_url + "/accounts/login/", data=form.encode(), method="POST")
        with self.opener.open(request, timeout=10) as response:
            assert "/accounts/login/" not in response.url, "the log-in failed"


def test_users_launch_while_redis_is_down_and_the_work_runs_once_it_is_back(running_stack):
    fault = running_stack
    tenant = fault.new_tenant()
    fault.only_host(vcpus=20, boot_seconds=1)
    browser = Browser(fault.stack.url)
    browser.log_in(tenant.email, tenant.password)

    fault.redis.stop()
    try:
        launches = [fault.launch(tenant, f"in-the-dark-{n}") for n in range(5)]
        listed = fault.api("GET", "instances/", tenant)
        pages = [browser.get(path) for path in ("/", "/instances/", f"/instances/{launches[0].json()['id']}/")]
        health = fault.stack.get("/healthz")
    finally:
        fault.redis.start()

    # Accepted as usual, quickly, although no message could be sent and no rate-limit counter reached.
    assert [launch.status_code for launch in launches] == [202] * 5, [launch.body[:200] for launch in launches]
    assert {launch.json()["state"] for launch in launches} == {"pending"}
    assert max(launch.seconds for launch in launches) < 5
    assert listed.status_code == 200 and len(listed.json()["data"]) == 5
    assert [status for status, _ in pages] == [200, 200, 200]
    assert "in-the-dark-0" in pages[1][1]
    assert health.status_code == 503
    assert set(health.json()["down"]) == {"broker", "cache"}
    assert health.json()["checks"]["database"]["ok"] is True

    # Nobody re-sends anything by hand: the reconciler finds the lost messages once Redis is back.
    ids = [launch.json()["id"] for launch in launches]
    fault.wait_for_states(dict.fromkeys(ids, "running"), timeout=60)
    assert fault.stack.get("/healthz").status_code == 200
    domains = fault.sql("SELECT count(*) FROM compute_simulateddomain WHERE uuid = ANY(%s::uuid[])", [ids])
    assert domains == [(5,)]
    resent = fault.sql(
        "SELECT count(DISTINCT instance_id) FROM compute_instanceevent WHERE instance_id = ANY(%s::uuid[])"
        " AND action = 'reconcile' AND message LIKE '%%lost message%%'",
        [ids],
    )
    assert resent == [(5,)]
