"""Time from `.delay()` to the task starting on a separate worker, for the configured broker.

Usage: python bench/queue_latency.py [samples]   (CELERY_BROKER_URL picks the broker; default: the embedded one)
Prints the median and 90th percentile in milliseconds (and appends them to bench/RESULTS.md). Starts its own worker
with a private var/ folder.
"""

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(samples: int) -> None:
    var_dir = tempfile.mkdtemp(prefix="hangar-bench-")
    os.environ.update(HANGAR_VAR_DIR=var_dir, CACHE_URL=f"file://{var_dir}/cache")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache

    from portal.tasks import LATENCY_KEY, heartbeat

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latencies = []
    try:
        heartbeat.delay(sent_at=time.time())  # warm-up: waits for the worker to be ready
        deadline = time.monotonic() + 60
        while cache.get(LATENCY_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(samples):
            cache.delete(LATENCY_KEY)
            # Requests arrive at random moments, not right after the worker's previous poll.
            time.sleep(random.uniform(0, 0.2))
            heartbeat.delay(sent_at=time.time())
            while (latency := cache.get(LATENCY_KEY)) is None:
                time.sleep(0.002)
            latencies.append(latency * 1000)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    broker = settings.CELERY_BROKER_URL.split("://")[0]
    latencies.sort()
    p90 = latencies[int(len(latencies) * 0.9) - 1]
    from bench.support import harness

    harness.report(
        "Queue latency (bench/queue_latency.py)",
        [(broker, samples, f"{statistics.median(latencies):.1f}", f"{p90:.1f}")],
        ("broker", "samples", "median ms", "p90 ms"),
        notes=["From `.delay()` to the task starting on a separate solo worker (CELERY_BROKER_URL picks the broker)."],
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
