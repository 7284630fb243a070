"""gunicorn settings for production; every value can be overridden with GUNICORN_* environment variables.

gunicorn runs the ASGI application (portal/asgi.py: pages, the API and the console's WebSockets) in uvicorn workers,
recycled after max_requests without dropping a request (DrainingUvicornWorker).
"""

import contextlib
import gc
import logging
import multiprocessing
import os
import sys

from gunicorn.arbiter import Arbiter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker


class DrainingHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, except that a graceful shutdown answers what arrives on idle keep-alive connections,
    and a request whose client half-closed the connection is answered.

    Stock uvicorn closes every idle keep-alive connection the moment it starts shutting down (max_requests reached):
    a client that sent its next request on one at that instant sees a reset. Here an idle connection stays open; a
    request that arrives on it is answered with `Connection: close`, and one that stays idle is closed by the
    keep-alive timeout as always. The worker leaves when it holds no connection (or after graceful_timeout).
    """

    draining = False

    def shutdown(self) -> None:
        self.draining = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def eof_received(self) -> bool:
        """The client shut its sending side after its request (curl, proxies, raw clients do): answer, then close.

        Stock uvicorn leaves this to asyncio, which closes the connection at once, before the application answered.
        """
        if self.pipeline:
            self.pipeline[0][0].keep_alive = False  # the last request queued closes the connection
            return True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            return True  # keep the connection open for the answer
        return False


class GunicornSocketsServer(Server):
    """uvicorn's server on the listening sockets gunicorn's arbiter opened (the worker hands it the plain sockets, not
    gunicorn's wrappers of them): its event loop's servers close them when it stops; closing them once more, as
    stock uvicorn does, fails with EBADF and logs an error on every worker exit."""

    async def shutdown(self, sockets=None) -> None:
        await super().shutdown(sockets=None)

    @contextlib.contextmanager
    def capture_signals(self):
        # uvicorn re-raises the signal that stopped it, so a worker the arbiter stopped dies of SIGTERM and the
        # arbiter logs that as an error; the stop was asked for, so the worker exits normally instead.
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


class DrainingUvicornWorker(UvicornWorker):
    """gunicorn's uvicorn worker, recycled after max_requests without dropping a connection (DrainingHttpProtocol).

    The other workers, and this one's replacement, take new connections from the shared listening socket as soon as
    it stops accepting. An open console WebSocket is closed with 1012 (service restart); the page reconnects.
    """

    # No lifespan events: Django and Channels have none to handle.
    CONFIG_KWARGS = {"loop": "auto", "http": DrainingHttpProtocol, "lifespan": "off"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout
        logging.getLogger("uvicorn.access").addFilter(QuietAccessFilter())

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = GunicornSocketsServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=[listener.sock for listener in self.sockets])
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class QuietAccessFilter(logging.Filter):
    """Leaves successful static-file and health-check requests out of the access log.

    A page fetches several static files and load balancers poll /healthz every few seconds; with them the requests
    that matter, pages and API calls, are hard to find. Failures are still logged.
    """

    QUIET_PREFIXES = ("/static/", "/healthz")

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client address, method, path with query, HTTP version, status code).
        try:
            _client, _method, path, _version, status = record.args
        except (TypeError, ValueError):
            return True
        return not (isinstance(status, int) and status < 400 and str(path).startswith(self.QUIET_PREFIXES))


def post_worker_init(worker):
    """Loads every URL, view and serializer module now, then freezes what is loaded.

    These objects live as long as the worker; frozen, the collector never walks them again, so a full collection
    (which a long page's throw-away objects trigger now and then) costs what the request allocated, not ~50 ms.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports the URL conf and, through it, every view)
    gc.collect()
    gc.freeze()


prometheus_multiprocess = None
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    from prometheus_client import multiprocess as prometheus_multiprocess

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = DrainingUvicornWorker
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 10
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker) -> None:
    # prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR): a recycled worker's live gauges leave with it.
    # The module is imported when this file loads: importing it here, in a SIGCHLD handler, can interrupt an import
    # of the same package in progress.
    if prometheus_multiprocess is not None:
        prometheus_multiprocess.mark_process_dead(worker.pid)
