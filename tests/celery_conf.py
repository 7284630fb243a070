"""Changing the Celery app's configuration for one test."""

from django.conf import settings

from portal.celery import app


def conf_name(key: str) -> str:
    """The name under which a change of `key` (a short name: broker_url, task_always_eager…) takes effect.

    The app reads Django's CELERY_* settings, and Celery 5.6 prefers a setting under that name to a change made
    under the short one, so a key Django sets is changed under its settings name.
    """
    name = f"CELERY_{key.upper()}"
    return name if hasattr(settings, name) else key


def set_celery_conf(monkeypatch, **values) -> None:
    """Sets each of `values` until the test ends; a broker URL in the environment too (Celery prefers it)."""
    for key, value in values.items():
        monkeypatch.setitem(app.conf, conf_name(key), value)
        if key == "broker_url":
            monkeypatch.setenv("CELERY_BROKER_URL", value)
