"""Who a socket speaks for: the client whose every socket sees its streams, and no one else's.

A logged-in user is one client across browsers; an anonymous visitor is one client per browser session (the chat
page makes sure a session exists); a socket that brings no session cookie is a client of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Client:
    key: str
    user_id: int | None = None
    session_key: str = ""

    @property
    def group(self) -> str:
        """The channel-layer group of the client's sockets (group names allow letters, digits, '-', '_', '.')."""
        return "client." + self.key.replace(":", ".")


def client_of(scope: dict[str, Any]) -> Client:
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return Client(key=f"user:{user.pk}", user_id=user.pk)
    session = scope.get("session")
    session_key = session.session_key if session is not None else None
    if session_key:
        return Client(key=f"session:{session_key}", session_key=session_key)
    return Client(key=f"socket:{uuid.uuid4().hex}")
