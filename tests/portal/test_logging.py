"""What the processes log: Celery's lines about the heartbeat, sent every 30 s all day, stay out of the INFO log."""

import logging

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS


def _celery_lines(caplog, level: int) -> list[tuple[str, str]]:
    """What beat and a worker log for one heartbeat and one reconcile run, seen at `level`."""
    with caplog.at_level(level):
        for name, entry in (("portal.tasks.heartbeat", "worker-heartbeat"), ("compute.tasks.reconcile", "reconcile")):
            context = {"id": "1", "name": name, "args": "()", "kwargs": "{}", "eta": None}
            logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", entry, name)
            logging.getLogger("celery.worker.strategy").info(LOG_RECEIVED, context)
            logging.getLogger("celery.app.trace").info(LOG_SUCCESS, {**context, "return_value": None, "runtime": 0.01})
    return [(record.levelname, record.getMessage()) for record in caplog.records]


def test_heartbeat_lines_are_left_out_at_info(caplog):
    lines = _celery_lines(caplog, logging.INFO)
    assert len(lines) == 3
    assert all(level == "INFO" and "compute.tasks.reconcile" in message for level, message in lines)


def test_heartbeat_lines_show_at_debug(caplog):
    heartbeat_levels = {level for level, message in _celery_lines(caplog, logging.DEBUG) if "heartbeat" in message}
    assert heartbeat_levels == {"DEBUG"}
