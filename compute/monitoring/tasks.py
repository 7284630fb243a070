"""Monitoring's periodic and notification tasks: thin adapters over compute.monitoring.services."""

from celery import shared_task

from compute.monitoring import services


@shared_task(acks_late=True, ignore_result=True)
def sample() -> None:
    """Every minute: read usage, roll it up, evaluate alert policies, and send notices that are due again."""
    services.metrics_sample()
    services.alerts_evaluate()
    for notification_id in services.notifications_due():
        notification_deliver.delay(notification_id=notification_id)


@shared_task(acks_late=True, ignore_result=True)
def purge() -> None:
    services.metrics_purge()


@shared_task(bind=True, acks_late=True, ignore_result=True)
def notification_deliver(task, *, notification_id: str) -> None:
    result = services.notification_deliver(notification_id=notification_id)
    if result.retry_at is not None and not task.request.is_eager:
        task.apply_async(kwargs={"notification_id": notification_id}, eta=result.retry_at)
