"""Who a socket speaks for: the client whose every socket sees its streams, and no one else's.

A logged-in user is one client across browsers; an anonymous visitor is one client per browser session (the chat
page makes sure a session exists); a socket that brings no session cookie is a client of its own.

A session key is the visitor's credential: whoever holds it can send it as a cookie and take over the chat. So it
never leaves `client_of`; the client is named by its SHA-256 instead, which is what the log, the admin and Redis
see. A plain hash and not an HMAC on `SECRET_KEY`: a key has 32 random characters of [a-z0-9] (about 165 bits), too
many to guess from the hash, and rotating `SECRET_KEY` must not cut every visitor off from their conversations.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from streaming.conf import app_settings


@dataclass(frozen=True)
class Client:
    key: str
    user_id: int | None = None
    # The SHA-256 hex of an anonymous visitor's session key; empty for anyone else.
    session_hash: str = ""
    is_staff: bool = False  # what a tool may require (see `streaming.tools`)

    @property
    def group(self) -> str:
        """The channel-layer group of the client's sockets (group names allow letters, digits, '-', '_', '.')."""
        return "client." + self.key.replace(":", ".")


def client_for(*, user: Any, session: Any) -> Client | None:
    """Who a request or socket speaks for, by the host's rule (`STREAMING_CLIENT`), or None: it may not chat.

    Sync: a host's rule may read the database (a group, a subscription); the socket calls it in a thread.
    """
    return _client_rule(app_settings.CLIENT)(user=user, session=session)


@functools.cache
def _client_rule(path: str) -> Callable[..., Client | None]:
    return import_string(path)


def default_client(*, user: Any, session: Any) -> Client | None:
    """The default `STREAMING_CLIENT`: a logged-in user, or else (unless `STREAMING_REQUIRE_LOGIN`) the browser
    session, or the socket itself when it brought no session."""
    if app_settings.REQUIRE_LOGIN and not (user is not None and user.is_authenticated):
        return None
    return client_of({"user": user, "session": session})


def client_of(scope: dict[str, Any]) -> Client:
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return Client(key=f"user:{user.pk}", user_id=user.pk, is_staff=user.is_staff)
    session = scope.get("session")
    session_key = session.session_key if session is not None else None
    if session_key:
        return client_of_session(session_key)
    return Client(key=f"socket:{uuid.uuid4().hex}")


def client_of_session(session_key: str) -> Client:
    """The client of the anonymous visitor with this session key (migration 0002 hashes older rows the same way)."""
    session_hash = hashlib.sha256(session_key.encode()).hexdigest()
    return Client(key=f"session:{session_hash}", session_hash=session_hash)
