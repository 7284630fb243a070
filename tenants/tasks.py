from celery import shared_task

from tenants.services import activity_purge, idempotency_keys_purge, user_sessions_purge


@shared_task(name="tenants.tasks.idempotency_keys_purge", ignore_result=True)
def idempotency_keys_purge_task() -> None:
    """Hourly: forgets API idempotency keys older than 24 hours."""
    idempotency_keys_purge()


@shared_task(name="tenants.tasks.activity_purge", ignore_result=True)
def activity_purge_task() -> None:
    """Daily: deletes activity entries older than ACTIVITY_RETENTION_DAYS."""
    activity_purge()


@shared_task(name="tenants.tasks.sessions_purge", ignore_result=True)
def sessions_purge_task() -> None:
    """Daily: forgets the rows of browser sessions that expired without a log-out."""
    user_sessions_purge()
