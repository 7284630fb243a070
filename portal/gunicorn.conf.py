"""gunicorn settings for production; every value can be overridden with GUNICORN_* environment variables."""

import gc
import multiprocessing
import os
import sys
import time

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker


class DrainingThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, recycled after max_requests without dropping a connection.

    The stock worker leaves its loop as soon as it has counted max_requests and closes whatever it holds: connections
    it had accepted but not read yet, and idle keep-alive connections a client may be sending its next request on.
    Clients saw resets, about one request in 2,000 (gunicorn issue #3038, still open). This one stops accepting,
    answers every request that reaches its connections with `Connection: close`, lets idle keep-alive connections time
    out as they always do, and leaves when it holds no connection; the arbiter then starts its replacement.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The stock check (`nr >= max_requests`, then stop the loop) must never fire; ours drains instead.
        self.recycle_after, self.max_requests = self.max_requests, sys.maxsize
        self.draining_since = None
        self.accepting = True

    def handle_request(self, req, conn):
        with self._lock:
            if self.draining_since is None and self.nr + 1 >= self.recycle_after:
                self.log.info("Autorestarting worker once its open connections are answered.")
                self.draining_since = time.monotonic()
                # No room left for keep-alive: from now on every response closes its connection.
                self.max_keepalived = 0
        return super().handle_request(req, conn)

    def murder_keepalived(self):
        """Runs once per turn of the worker's loop, on its main thread: the place to stop accepting and to leave."""
        super().murder_keepalived()
        if self.draining_since is None:
            return
        if self.accepting:
            # Other workers, or this one's replacement, take the next connections from the shared listening socket.
            with self._lock:
                for listener in self.sockets:
                    self.poller.unregister(listener)
            self.accepting = False
        # A connection opened but never used (a browser's preconnect) is given up after graceful_timeout.
        if self.nr_conns <= 0 or time.monotonic() - self.draining_since > self.cfg.graceful_timeout:
            self.alive = False


class QuietAccessLogger(Logger):
    """Leaves successful static-file and health-check requests out of the access log.

    A page fetches several static files and load balancers poll /healthz every few seconds; with them the requests
    that matter, pages and API calls, are hard to find. Failures are still logged.
    """

    QUIET_PREFIXES = ("/static/", "/healthz")

    def access(self, resp, req, environ, request_time):
        if resp.status_code is not None and resp.status_code < 400 and req.path.startswith(self.QUIET_PREFIXES):
            return
        super().access(resp, req, environ, request_time)


def post_worker_init(worker):
    """Loads every URL, view and serializer module now, then freezes what is loaded.

    These objects live as long as the worker; frozen, the collector never walks them again, so a full collection
    (which a long page's throw-away objects trigger now and then) costs what the request allocated, not ~50 ms.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports the URL conf and, through it, every view)
    gc.collect()
    gc.freeze()


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
worker_class = DrainingThreadWorker
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 10
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
logger_class = QuietAccessLogger
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker) -> None:
    # prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR): a recycled worker's live gauges leave with it.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
