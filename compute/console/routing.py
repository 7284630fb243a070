"""WebSocket routes (portal/asgi.py mounts them behind session authentication and the allowed-origin check)."""

from django.urls import path

from compute.console.consumers import ConsoleConsumer

websocket_urlpatterns = [
    path("ws/instances/<uuid:pk>/console/", ConsoleConsumer.as_asgi()),
]
