from celery import shared_task

from tenants.services import idempotency_keys_purge


@shared_task(name="tenants.tasks.idempotency_keys_purge", ignore_result=True)
def idempotency_keys_purge_task() -> None:
    """Hourly: forgets API idempotency keys older than 24 hours."""
    idempotency_keys_purge()
