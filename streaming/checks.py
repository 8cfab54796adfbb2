"""System checks: what would otherwise fail silently, or only on the first socket, is reported at start-up
(`manage.py check`, `runserver`, `migrate`).

- E001: a wrong `STREAMING_TOOLS` entry.
- E002: a host hook (`STREAMING_CLIENT`, `STREAMING_SYSTEM_INSTRUCTION`, `STREAMING_OFFERED_TOOLS`,
  `STREAMING_BUDGET`) that cannot be imported.
- E003: a Redis channel layer whose server the workers' shared state cannot tell (several hosts): workers would each
  keep their own, so no worker could replay, or sweep, another's streams.
- E004: shared state in Redis (`STREAMING_REDIS_URL`) with a channel layer that is not: frames would never reach a
  socket on another worker.
- E005: no `ASGI_APPLICATION`, or no `CHANNEL_LAYERS`.
- E006: the ASGI application does not route `STREAMING_SOCKET_PATH` to the chat consumer (a check that looks through
  Channels' routers and middleware; an application it cannot look into is not reported).
- E007: `STREAMING_OPENAI_API` is neither "chat" nor "responses".
- E008: `STREAMING_TAKEOVER` is on, but the API is not "responses" or the workers share no Redis: no other worker
  could re-attach to an answer.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from streaming.conf import app_settings

HOOKS = ("CLIENT", "SYSTEM_INSTRUCTION", "OFFERED_TOOLS", "BUDGET")


APIS = ("chat", "responses")


def check_api(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    if app_settings.OPENAI_API in APIS:
        return []
    return [
        checks.Error(
            f"STREAMING_OPENAI_API is {app_settings.OPENAI_API!r}.",
            hint='Set it to "chat" (any OpenAI-compatible server) or "responses" (OpenAI\'s Responses API).',
            id="streaming.E007",
        )
    ]


def check_takeover(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    from streaming.deployment.shared import state_url

    if not app_settings.TAKEOVER:
        return []
    if app_settings.OPENAI_API != "responses":
        problem = f'STREAMING_OPENAI_API is {app_settings.OPENAI_API!r}, and only "responses" can re-attach.'
    elif state_url() is None:
        problem = "the workers share no Redis (STREAMING_REDIS_URL, or a Redis channel layer)."
    else:
        return []
    return [
        checks.Error(
            f"STREAMING_TAKEOVER is on, but {problem}",
            hint='Take-over needs STREAMING_OPENAI_API = "responses" and Redis; or turn STREAMING_TAKEOVER off.',
            id="streaming.E008",
        )
    ]


def check_tools(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    from streaming.tools import registered_tools

    try:
        registered_tools()
    except (ImproperlyConfigured, TypeError) as exc:  # TypeError: a tool `@tool` refused as its module loaded
        return [checks.Error(str(exc), hint="Fix the dotted paths in STREAMING_TOOLS.", id="streaming.E001")]
    return []


def check_hooks(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    found = []
    for name in HOOKS:
        path = getattr(app_settings, name)
        if path is None:
            continue
        try:
            hook = import_string(path)
        except ImportError:
            hook = None
        if not callable(hook):
            found.append(
                checks.Error(
                    f"STREAMING_{name} names {path!r}, which is not a function that can be imported.",
                    hint="Give the dotted path of a function, e.g. 'myproject.chat.system_instruction'.",
                    id="streaming.E002",
                )
            )
    return found


def check_shared_state(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    from streaming.deployment.shared import is_redis_layer, state_url

    layers = getattr(settings, "CHANNEL_LAYERS", None)
    if not layers or "default" not in layers:
        return [
            checks.Error(
                "CHANNEL_LAYERS has no 'default' layer: the chat's sockets cannot hear their streams.",
                hint="For one process: {'default': {'BACKEND': 'channels.layers.InMemoryChannelLayer'}}; for more, "
                "a channels-redis layer (see docs/embedding.md).",
                id="streaming.E005",
            )
        ]
    redis_layer = is_redis_layer(layers["default"].get("BACKEND", ""))
    if redis_layer and state_url() is None:
        return [
            checks.Error(
                "The channel layer is on Redis, but the workers' shared state would be in each process's memory: "
                "no worker could replay or sweep another's streams.",
                hint="Set STREAMING_REDIS_URL to one Redis server the workers share (a layer on several hosts "
                "does not say which).",
                id="streaming.E003",
            )
        ]
    if not redis_layer and app_settings.REDIS_URL:
        return [
            checks.Error(
                "STREAMING_REDIS_URL puts the workers' shared state in Redis, but the channel layer is not a Redis "
                "layer: frames would never reach a socket on another worker.",
                hint="Use a channels-redis layer in CHANNEL_LAYERS, or leave STREAMING_REDIS_URL unset for one "
                "process.",
                id="streaming.E004",
            )
        ]
    return []


def check_asgi(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        return [
            checks.Error(
                "ASGI_APPLICATION is not set: the chat needs an ASGI server (daphne) for its socket.",
                hint="Set ASGI_APPLICATION = 'yourproject.asgi.application' and add 'daphne' first in INSTALLED_APPS.",
                id="streaming.E005",
            )
        ]
    try:
        application = import_string(path)
    except ImportError:
        return [checks.Error(f"ASGI_APPLICATION names {path!r}, which cannot be imported.", id="streaming.E005")]
    if routes_to_chat(application, app_settings.SOCKET_PATH) is False:
        return [
            checks.Error(
                f"The ASGI application does not route the socket's path {app_settings.SOCKET_PATH!r} to the chat.",
                hint="Route it with URLRouter(streaming.routing.websocket_urlpatterns) under 'websocket', at the "
                "top level (the path is STREAMING_SOCKET_PATH).",
                id="streaming.E006",
            )
        ]
    return []


def routes_to_chat(application: Any, path: str, depth: int = 0) -> bool | None:
    """Whether a WebSocket to `path` reaches the chat consumer through this ASGI application: through Channels'
    `ProtocolTypeRouter`, `URLRouter`s (nested too) and middleware (which keep their inner application as `inner`
    or `application`). None when some part cannot be looked into."""
    from channels.routing import ProtocolTypeRouter, URLRouter

    from streaming.consumers import ChatConsumer

    if depth > 32:
        return None
    consumer = getattr(application, "consumer_class", None)
    if isinstance(consumer, type):
        return issubclass(consumer, ChatConsumer)
    if isinstance(application, ProtocolTypeRouter):
        websocket = application.application_mapping.get("websocket")
        return False if websocket is None else routes_to_chat(websocket, path, depth + 1)
    if isinstance(application, URLRouter):
        unknown = False
        for route in application.routes:
            match = route.pattern.match(path.lstrip("/"))
            if match:
                found = routes_to_chat(route.callback, match[0], depth + 1)
                if found:
                    return True
                unknown = unknown or found is None
        return None if unknown else False
    inner = getattr(application, "inner", None) or getattr(application, "application", None)
    return None if inner is None else routes_to_chat(inner, path, depth + 1)
