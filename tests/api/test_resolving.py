"""An API path is resolved by the API's URL conf alone, not tried against every page's patterns first."""

import pytest
from django.urls import URLResolver, resolve

PAGE_URLCONFS = {"tenants.urls", "compute.urls", "compute.network.urls", "compute.monitoring.urls"}


@pytest.mark.parametrize("path", ["/api/v1/instances/", "/api/v1/tenant/", "/api/v1/no-such-thing/"])
def test_an_api_path_never_tries_the_pages_url_confs(path, monkeypatch):
    asked = []
    original = URLResolver.resolve

    def recording(self, path):
        asked.append(getattr(self.urlconf_name, "__name__", str(self.urlconf_name)))
        return original(self, path)

    monkeypatch.setattr(URLResolver, "resolve", recording)
    match = resolve(path)
    assert match.route.startswith("api/")
    assert not PAGE_URLCONFS & set(asked), asked
