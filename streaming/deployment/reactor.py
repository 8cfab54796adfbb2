"""A Twisted reactor for daphne that writes a socket's frames at the loop's next turn without asking epoll first.

Twisted buffers what a connection writes and asks the reactor to watch the socket for writability
(`addWriter`); when the socket is reported writable it sends the buffer and stops watching (`removeWriter`). On the
asyncio reactor daphne uses, each of those is an `add_writer` or `remove_writer` of the event loop: two `epoll_ctl`
system calls and a poll handle for every frame a socket sends, although a socket with an empty send buffer is always
writable. In a burst of streams that was about 6 % of a worker's CPU (docs/performance.md).

`PromptWriteReactor` queues the connection instead, and sends every queued connection's buffer in one callback at the
loop's next turn: the same turn at which epoll would have reported it writable, so frames are not sent any later,
and what a socket writes within one turn still goes in one `send`. Only a socket whose send buffer is full (a slow
reader) is left with data; that one is watched the usual way until it drains.

It relies on `AsyncioSelectorReactor._readOrWrite`, the reactor's own dispatch of a ready socket (error handling and
disconnection included), which is private: pyproject.toml pins Twisted to the releases tested (below 27), and
tests/test_reactor.py holds the assumption (nothing is sent if the method goes).
"""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.main import installReactor
from twisted.python.log import callWithLogger


class PromptWriteReactor(AsyncioSelectorReactor):
    """An asyncio reactor whose writers are flushed at the next turn, and watched by epoll only when a send falls
    short."""

    def __init__(self, eventloop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(eventloop)
        self._due: dict[Any, None] = {}  # connections with data to send at the next turn, in the order they wrote
        self._flush_scheduled = False

    def addWriter(self, writer: Any) -> None:
        if writer in self._due or writer in self._writers:
            return
        self._due[writer] = None
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._asyncioEventloop.call_soon(self._flush)

    def removeWriter(self, writer: Any) -> None:
        if writer in self._due:
            del self._due[writer]
            return
        super().removeWriter(writer)

    def getWriters(self) -> list[Any]:
        return [*self._due, *super().getWriters()]

    def removeAll(self) -> list[Any]:
        due, self._due = list(self._due), {}
        return due + super().removeAll()

    def _flush(self) -> None:
        """Send what each queued connection has; one whose send fell short stays watched until its socket drains.

        A connection that sends all it has calls `removeWriter` from inside `doWrite` (Twisted's `stopWriting`), which
        takes it off the queue; one still queued afterwards has data left.
        """
        self._flush_scheduled = False
        for writer in list(self._due):
            if writer not in self._due:  # closed by an earlier connection's callback
                continue
            callWithLogger(writer, self._readOrWrite, writer, False)
            if writer in self._due:
                del self._due[writer]
                super().addWriter(writer)


def install(loop: asyncio.AbstractEventLoop) -> PromptWriteReactor:
    """Install the reactor on `loop`, before daphne's server module is imported (daphne then keeps it, being an
    asyncio reactor)."""
    reactor = PromptWriteReactor(loop)
    installReactor(reactor)
    return reactor
