"""ASGI entry point: HTTP goes to Django, WebSocket to the chat consumer behind origin and session checks, as any
Channels app is served. The worker's duties (heartbeat, sweep, drain on SIGTERM) start with its first request or
socket, by themselves.

Serve it with `daphne chatproject.asgi:application` (see the README), or `manage.py runserver` in development.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
django_application = get_asgi_application()  # sets Django up before anything imports models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from streaming.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
