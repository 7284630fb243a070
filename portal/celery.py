"""The Celery application: configured from Django settings (CELERY_*), tasks found in every app's tasks.py."""

import gc
import os
import time

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready
from django.db import close_old_connections
from kombu.transport import TRANSPORT_ALIASES

# The embedded broker (filesystem://) writes each message whole before a worker can see it (portal/brokerfs.py);
# Redis's channels keep one client each instead of building one per command (portal/brokerredis.py).
TRANSPORT_ALIASES["filesystem"] = "portal.brokerfs:Transport"
TRANSPORT_ALIASES["redis"] = TRANSPORT_ALIASES["rediss"] = "portal.brokerredis:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("hangar")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _announce_worker(sender, **kwargs) -> None:
    """A fresh worker sends itself a heartbeat through the broker: /healthz sees it at once, not at beat's next run."""
    sender.app.send_task("portal.tasks.heartbeat", kwargs={"sent_at": time.time()})


@worker_process_init.connect
def _freeze_loaded_objects(**kwargs) -> None:
    """Each pool process starts with Django and every task loaded: freeze them, so full collections skip them."""
    gc.collect()
    gc.freeze()


@task_prerun.connect
@task_postrun.connect
def _check_database_connections(sender=None, **kwargs) -> None:
    """Around every task, what Django does around every request: a connection past CONN_MAX_AGE, or left unusable by
    an error, is closed, and the next use checks the connection first (CONN_HEALTH_CHECKS). The connection itself is
    kept (CELERY_DB_REUSE_MAX); an eager task runs inside its caller's transaction and is left alone."""
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
