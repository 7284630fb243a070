"""Hangar's settings for the benchmarks: the bench URL conf (baseline views) and static files without a manifest."""

from portal.settings import *  # noqa: F403
from portal.settings import STORAGES

ROOT_URLCONF = "bench.support.urls"
# Pages render `{% static %}` without running collectstatic first.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# The benchmarks measure the server, not the rate limiter's refusals: every client here is one credential.
API_RATE_LIMITS = dict.fromkeys(("per_hour", "burst_per_minute", "writes_per_hour", "writes_burst_per_minute"), 10**9)
