"""The ASGI application that gunicorn's uvicorn workers serve: Django's pages and API over HTTP, and the instance
console over WebSocket (Django Channels) on the same origin."""

import asyncio
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# whitenoise answers static files with a synchronous file iterator; Django reads it in a thread, as it should, but
# warns about it on every worker's first static file.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")


class SynchronousStackHandler(ASGIHandler):
    """Django's ASGI handler with the middleware and the view run as one synchronous call, on a pool of long-lived
    threads.

    Every page and API view here is synchronous. Django's async mode runs each old-style middleware's
    process_request and process_response in a thread switch of its own (about twenty per request, 2 to 3 ms of CPU,
    ten times a small JSON view's own cost), and gives every request a new thread of its own: whatever a thread
    keeps was made again for each request, a PostgreSQL connection (persistent connections never persisted) and
    Celery's result backend (found by scanning every installed package's entry points). Here the stack runs as under
    a threaded WSGI server: once per request, on one of WEB_THREADS threads that keep their connections, checked
    before and after each request as Django's request signals would. Reading the body, streaming the answer and
    noticing a client that went away stay Django's.
    """

    _executor: ThreadPoolExecutor | None = None
    _executor_lock = threading.Lock()

    @classmethod
    def executor(cls) -> ThreadPoolExecutor:
        # Made at the first request, in the worker process (threads do not survive a fork).
        with cls._executor_lock:
            if cls._executor is None:
                cls._executor = ThreadPoolExecutor(max_workers=settings.WEB_THREADS, thread_name_prefix="http")
            return cls._executor

    @classmethod
    def shutdown(cls) -> None:
        """Ends the threads, closing their database connections (tests, before their database is dropped)."""
        with cls._executor_lock:
            executor, cls._executor = cls._executor, None
        if executor is not None:
            for _ in range(executor._max_workers):
                executor.submit(connections.close_all)
            executor.shutdown(wait=True)

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def __call__(self, scope, receive, send):
        # Not Django's ThreadSensitiveContext, which makes a thread per request.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def get_response_async(self, request):
        respond = sync_to_async(self._respond, thread_sensitive=False, executor=self.executor())
        return await respond(request)

    async def listen_for_disconnect(self, receive):
        """Django's, but a client gone (or the answer sent: the server then says so) ends it without raising, and
        so does handle() cancelling it once the answer is sent.

        Django 5.2's handle() treats the listener's end the same either way: it cancels the request if still being
        processed, ignores RequestAborted and expects CancelledError. Either exception, though, took handle()'s
        frame into its traceback, and that frame holds the tasks (one of them holding the exception) and the
        response: a reference cycle that kept every answer (a page's rows, an API list's data) until the garbage
        collector's next full collection, about one a second under load, each pausing a request for 10 to 60 ms.
        handle() is Django 5.2's (pinned below 5.3): Django 6.1's cancels the request only when the listener raises.
        """
        try:
            message = await receive()
        except asyncio.CancelledError:
            return  # the answer is sent before the server said so: handle() stops listening
        if message["type"] != "http.disconnect":
            raise AssertionError(f"Invalid ASGI message after request body: {message['type']}")

    def _respond(self, request):
        close_old_connections()  # the request_started signal's check, in the thread that uses the connections
        try:
            return self.get_response(request)
        finally:
            close_old_connections()  # and request_finished's


# Django is set up before anything imports models (the console's routes do).
django.setup(set_prefix=False)
http_application = SynchronousStackHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from compute.console.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http_application,
        # A page of another site cannot open a console with the visitor's cookies: its Origin is refused.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
