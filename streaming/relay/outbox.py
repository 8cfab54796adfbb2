"""Coalescing of a stream's output: one send carries everything of a kind that arrived while the previous send was
in flight.

A model can write faster than a channel layer takes messages, so sending one message per token would queue up
latency and, in a layer with a capacity, drop messages. Holding tokens back for a timer would add latency when
tokens are sparse. The outbox does neither: a piece that arrives while nothing is being sent goes out at once;
pieces that arrive during a send wait for it to finish and then leave together, as one frame.

Answer text, reasoning and a tool call's arguments are merged this way, each with its own kind (and a call's
arguments only with the same call's); every other part (a tool call opening, running, its result) is sent on its
own, in its place: the order of everything put is the order it is sent in.

A merged text is at most `MAX_DELTA_CHARS` characters: a socket far behind would otherwise be sent everything that
queued up as one frame, and a frame past the WebSocket server's message limit (1 MiB under daphne) is not sent at
all: the server closes the socket instead. What is over the bound leaves with the next send.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

# A part: its kind, its text, and what else it carries (a call's id for arguments; opaque to the outbox).
Part = tuple[str, str, Any]
Send = Callable[[str, str, Any], Awaitable[None]]
# 32,768 characters are at most 128 KiB of UTF-8, well inside any WebSocket server's message limit.
MAX_DELTA_CHARS = 32_768
MERGED = frozenset({"delta", "reasoning", "tool_arguments"})


class Outbox:
    """Sends parts through `send(kind, text, extra)`, in order, merging what queues up of the same kind.

    `put` waits when `limit` parts are already waiting, so a stalled channel layer slows the reading of the
    model's stream instead of growing memory without bound.
    """

    def __init__(self, send: Send, *, limit: int, max_chars: int = MAX_DELTA_CHARS) -> None:
        self._send = send
        self._limit = limit
        self._max_chars = max_chars
        self._pending: deque[Part] = deque()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self._sender = asyncio.create_task(self._run(), name="outbox")

    async def put(self, kind: str, text: str = "", extra: Any = None) -> None:
        while len(self._pending) >= self._limit and not self._sender.done():
            self._room.clear()
            await self._room.wait()
        if self._sender.done():
            self._sender.result()  # a failed send stops the stream rather than losing text silently
        self._pending.append((kind, text, extra))
        self._wakeup.set()

    async def close(self) -> None:
        """Send whatever is still waiting, and stop."""
        self._closing = True
        self._wakeup.set()
        await self._sender

    def abandon(self) -> None:
        """Stop without sending what waits, for a stream that is being torn down."""
        self._sender.cancel()

    async def _run(self) -> None:
        try:
            while True:
                if not self._pending:
                    if self._closing:
                        return
                    # Cleared only when there is nothing to do, so no `put` or `close` can be missed.
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                kind, text, extra = self._take()
                self._room.set()
                await self._send(kind, text, extra)
        finally:
            self._room.set()  # a writer must never wait on a sender that has stopped

    def _take(self) -> Part:
        """The first part, merged with the parts of its kind right behind it, up to `max_chars`; a text over the
        bound is split, its rest left first in line."""
        kind, text, extra = part = self._pending.popleft()
        if kind not in MERGED:
            return part
        taken: list[str] = []
        room = self._max_chars
        while True:
            if len(text) > room:
                self._pending.appendleft((kind, text[room:], extra))
                text = text[:room]
            taken.append(text)
            room -= len(text)
            if room <= 0 or not self._pending:
                break
            following = self._pending[0]
            if following[0] != kind or following[2] != extra:
                break
            text = self._pending.popleft()[1]
        return kind, "".join(taken), extra
