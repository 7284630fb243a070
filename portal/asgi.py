"""The ASGI application that gunicorn's uvicorn workers serve: Django's pages and API over HTTP, and the instance
console over WebSocket (Django Channels) on the same origin."""

import os
import warnings

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# whitenoise answers static files with a synchronous file iterator; Django reads it in a thread, as it should, but
# warns about it on every worker's first static file.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")

# Django is set up before anything imports models (the console's routes do).
http_application = get_asgi_application()

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
