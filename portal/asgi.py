"""The ASGI application that gunicorn's uvicorn workers serve: Django's pages and API over HTTP, and the instance
console over WebSocket (Django Channels) on the same origin."""

import os
import warnings

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# whitenoise answers static files with a synchronous file iterator; Django reads it in a thread, as it should, but
# warns about it on every worker's first static file.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")


class SynchronousStackHandler(ASGIHandler):
    """Django's ASGI handler with the middleware and the view run as one synchronous call, in one thread switch.

    Every page and API view here is synchronous. Django's async mode runs each old-style middleware's
    process_request and process_response in a thread of its own: about twenty thread switches per request, 2 to 3 ms
    of CPU (ten times a small JSON view's own cost). Here the stack runs as it does under WSGI, called once from the
    event loop; reading the body, streaming the answer and noticing a client that went away stay Django's.
    """

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


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
