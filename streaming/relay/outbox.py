"""Coalescing of a stream's output: one send carries everything of a kind that arrived while the previous send was
in flight.

A model can write faster than a channel layer takes messages, so sending one message per token would queue up
latency and, in a layer with a capacity, drop messages. Holding tokens back for a timer would add latency when
tokens are sparse. The outbox does neither: a piece that arrives while nothing is being sent goes out at once;
pieces that arrive during a send wait for it to finish and then leave together, as one frame.

Answer text, reasoning and a tool call's arguments are merged this way, each with its own kind (and a call's
arguments only with the same call's); every other part (a tool call opening, running, its result) is sent on its
own, in its place: the order of everything put is the order it is sent in. A part may carry a mark of where it
came from (the Responses API's event number, see `relay.handover`); a merged part carries the last one's.

A merged text is at most `MAX_DELTA_CHARS` characters: a socket far behind would otherwise be sent everything that
queued up as one frame, and a frame past the WebSocket server's message limit (1 MiB under daphne) is not sent at
all: the server closes the socket instead. What is over the bound leaves with the next send.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

# A part: its kind, its text, what else it carries (a call's id for arguments), and its mark (both opaque here).
Part = tuple[str, str, Any, Any]
Send = Callable[[str, str, Any, Any], Awaitable[None]]
# 32,768 characters are at most 128 KiB of UTF-8, well inside any WebSocket server's message limit.
MAX_DELTA_CHARS = 32_768
MERGED = frozenset({"delta", "reasoning", "tool_arguments"})


class Outbox:
    """Sends parts through `send(kind, text, extra, mark)`, in order, merging what queues up of the same kind.

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

    async def put(self, kind: str, text: str = "", extra: Any = None, mark: Any = None) -> None:
        while len(self._pending) >= self._limit and not self._sender.done():
            self._room.clear()
            await self._room.wait()
        if self._sender.done():
            self._sender.result()  # a failed send stops the stream rather than losing text silently
        self._pending.append((kind, text, extra, mark))
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
                kind, text, extra, mark = self._take()
                self._room.set()
                await self._send(kind, text, extra, mark)
        finally:
            self._room.set()  # a writer must never wait on a sender that has stopped

    def _take(self) -> Part:
        """The first part, merged with the whole parts of its kind right behind it, up to `max_chars`.

        Parts are merged whole, so that a merged part ends where one of them ends and its mark says exactly how far
        it reaches. Only a part over the bound by itself is split, its rest left first in line with its mark: the
        pieces before carry none (no mark can say "part of that one").
        """
        kind, text, extra, mark = part = self._pending.popleft()
        if kind not in MERGED:
            return part
        if len(text) > self._max_chars:
            self._pending.appendleft((kind, text[self._max_chars :], extra, mark))
            return kind, text[: self._max_chars], extra, None
        taken, room = [text], self._max_chars - len(text)
        while self._pending:
            following = self._pending[0]
            if following[0] != kind or following[2] != extra or len(following[1]) > room:
                break
            _, text, _, mark = self._pending.popleft()
            taken.append(text)
            room -= len(text)
        return kind, "".join(taken), extra, mark
