"""ASGI entry point: HTTP goes to Django, WebSocket to the chat consumer behind origin and session checks, and the
first request of either starts this worker's duties.

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
from streaming.worker import start_duties  # noqa: E402

application = start_duties(
    ProtocolTypeRouter(
        {
            "http": django_application,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
