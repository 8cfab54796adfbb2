"""The socket's route, for the host's `asgi.py`: `URLRouter(streaming.routing.websocket_urlpatterns)`.

Its path is `STREAMING_SOCKET_PATH`, which the page is given too, so the two cannot disagree.
"""

from django.urls import path

from streaming.conf import app_settings
from streaming.consumers import ChatConsumer

websocket_urlpatterns = [
    path(app_settings.SOCKET_PATH.lstrip("/"), ChatConsumer.as_asgi()),
]
