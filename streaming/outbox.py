"""Coalescing of deltas: one send carries everything that arrived while the previous send was in flight.

A model can write faster than a channel layer takes messages, so sending one message per token would queue up
latency and, in a layer with a capacity, drop messages. Holding tokens back for a timer would add latency when
tokens are sparse. The outbox does neither: a token that arrives while nothing is being sent goes out at once;
tokens that arrive during a send wait for it to finish and then leave together, as one delta with one `seq`.

A delta carries at most `MAX_DELTA_CHARS` characters: a socket far behind would otherwise be sent everything that
queued up as one frame, and a frame past the WebSocket server's message limit (1 MiB under daphne) is not sent at
all: the server closes the socket instead. What is over the bound leaves with the next send.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

SendDelta = Callable[[int, str], Awaitable[None]]
# 32,768 characters are at most 128 KiB of UTF-8, well inside any WebSocket server's message limit.
MAX_DELTA_CHARS = 32_768


class Outbox:
    """Sends text as numbered deltas (`seq` 1, 2, 3... with no gap) through `send`, merging what queues up.

    `put` waits when `limit` pieces are already waiting, so a stalled channel layer slows the reading of the
    model's stream instead of growing memory without bound.
    """

    def __init__(self, send: SendDelta, *, limit: int, max_chars: int = MAX_DELTA_CHARS) -> None:
        self._send = send
        self._limit = limit
        self._max_chars = max_chars
        self._pending: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self.seq = 0
        self._sender = asyncio.create_task(self._run(), name="outbox")

    async def put(self, text: str) -> None:
        while len(self._pending) >= self._limit and not self._sender.done():
            self._room.clear()
            await self._room.wait()
        if self._sender.done():
            self._sender.result()  # a failed send stops the stream rather than losing text silently
        self._pending.append(text)
        self._wakeup.set()

    async def close(self) -> int:
        """Send whatever is still waiting, stop, and return the last `seq` sent."""
        self._closing = True
        self._wakeup.set()
        await self._sender
        return self.seq

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
                text = self._take()
                self._room.set()
                self.seq += 1
                await self._send(self.seq, text)
        finally:
            self._room.set()  # a writer must never wait on a sender that has stopped

    def _take(self) -> str:
        """What waits, merged, up to `max_chars`; a piece over the bound is split, its rest left first in line."""
        taken: list[str] = []
        room = self._max_chars
        while self._pending and room > 0:
            piece = self._pending.popleft()
            if len(piece) > room:
                self._pending.appendleft(piece[room:])
                piece = piece[:room]
            taken.append(piece)
            room -= len(piece)
        return "".join(taken)
