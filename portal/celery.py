"""The Celery application: configured from Django settings (CELERY_*), tasks found in every app's tasks.py."""

import logging
import os
import time

from celery import Celery
from celery.signals import worker_ready
from kombu.exceptions import ChannelError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

logger = logging.getLogger(__name__)

app = Celery("hangar")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _announce_worker(sender, **kwargs) -> None:
    """A fresh worker sends itself a heartbeat through the broker: /healthz sees it at once, not at beat's next run."""
    sender.app.send_task("portal.tasks.heartbeat", kwargs={"sent_at": time.time()})


def queue_of(task_name: str) -> str:
    """The queue a task's messages are sent to (CELERY_TASK_ROUTES, else the default queue)."""
    return app.amqp.router.route({}, task_name, args=(), kwargs={})["queue"].name


def queue_length(name: str) -> int | None:
    """How many messages wait in the broker's queue `name`, not yet taken by any worker; None if the broker cannot
    be asked. Messages a worker has taken (running, or reserved by it) are not counted. Always 0 in eager mode,
    where nothing ever waits."""
    if app.conf.task_always_eager:
        return 0
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            try:
                return connection.default_channel.queue_declare(queue=name, passive=True).message_count
            except ChannelError:  # never declared, or (Redis) emptied and so gone: nothing waits
                return 0
    except Exception as error:  # any transport's connection error means "cannot tell"
        logger.warning("Cannot ask the broker how many messages wait in queue %s: %s", name, error)
        return None
