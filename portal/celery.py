"""The Celery application: configured from Django settings (CELERY_*), tasks found in every app's tasks.py."""

import gc
import os
import time

from celery import Celery
from celery.signals import worker_process_init, worker_ready
from kombu.transport import TRANSPORT_ALIASES

# The embedded broker (filesystem://) writes each message whole before a worker can see it (portal/brokerfs.py).
TRANSPORT_ALIASES["filesystem"] = "portal.brokerfs:Transport"

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
