"""The system instruction a model is given: the client's own, or the one the deployment pins.

A deployment that must decide what the model is told (a house style, a persona, context it looks up for the asking
client) names a function in `STREAMING_SYSTEM_INSTRUCTION`; it is the hook that later work on retrieved context
builds on. While one is named, a client's own instruction would contradict it, so none is taken: `ready` says
`system_pinned`, a `prompt` that carries `system` is refused (`protocol.parse_client_frame`), and so is a
conversation's setting of one (`protocol.parse_settings`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import cache

from django.utils.module_loading import import_string

from streaming.clients import Client
from streaming.conf import app_settings

# `(*, client, conversation) -> str | None`: None (or "") means no system message at all.
SystemInstruction = Callable[..., str | None]


def pinned() -> bool:
    """Whether the deployment sets the system instruction itself, so that clients may not send one."""
    return bool(_path())


def system_for(*, client: Client, conversation: uuid.UUID | None, requested: str | None) -> str | None:
    """The system instruction for one prompt: the pinned function's answer when the deployment names one (what the
    client requested is then None, since a prompt with its own was refused), else the client's own.

    Called while the prompt is recorded, in the database thread and its transaction: the function may use the ORM,
    and what it raises refuses the prompt (the client hears `internal_error`, the log has the exception's type).
    """
    path = _path()
    if not path:
        return requested
    return _load(path)(client=client, conversation=conversation) or None


def _path() -> str | None:
    return app_settings.SYSTEM_INSTRUCTION


@cache
def _load(path: str) -> SystemInstruction:
    """Imported once per process, by the first prompt that needs it; keyed by its path, so that a setting changed
    (by a test) names a function of its own."""
    return import_string(path)
