"""The channel layer of a deployment without Redis: Channels' in-memory layer, with its cost per message cut.

Channels' `InMemoryChannelLayer` scans every channel and group for expired entries on each send and receive,
deep-copies every message, and starts a task per member for a group send. With hundreds of sockets that is most of
what a delta costs (docs/performance.md). This layer looks for expired entries at most once a second, copies a message
shallowly (the app's messages hold only strings, numbers, booleans and None), and sends to a group's members in a
plain loop. What it keeps, for how long, and when it drops a message (a full channel) are unchanged. It adds `taken`,
with which a stream paces its deltas to its client's sockets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

CLEANING_INTERVAL = 1.0


class LocalChannelLayer(InMemoryChannelLayer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._next_cleaning = 0.0
        self._emptied: dict[str, asyncio.Event] = {}  # set when the channel's queue runs empty (see `taken`)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        self._put(channel, message)

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self._queue(channel)
        try:
            _, message = await queue.get()
        finally:
            if queue.empty():
                self.channels.pop(channel, None)
                self._tell_emptied(channel)
        return message

    async def group_discard(self, group: str, channel: str) -> None:
        await super().group_discard(group, channel)
        self._tell_emptied(channel)  # a socket that left will take nothing more: no one waits for it

    async def taken(self, group: str) -> None:
        """Wait until every member of `group` has taken all it was sent (callers bound the wait with a timeout).

        A sender that waits for this paces itself to its slowest reader, as a round trip to Redis paces it: what it
        would have sent meanwhile leaves later as one larger message (see `outbox`) instead of queueing up message by
        message when the process is overloaded.
        """
        waiting = [channel for channel in self.groups.get(group, ()) if self._holds_messages(channel)]
        for event in [self._emptied.setdefault(channel, asyncio.Event()) for channel in waiting]:
            await event.wait()

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        try:
            self._queue(channel).put_nowait((time.time() + self.expiry, dict(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    def _queue(self, channel: str) -> asyncio.Queue:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    def _holds_messages(self, channel: str) -> bool:
        queue = self.channels.get(channel)
        return queue is not None and not queue.empty()

    def _tell_emptied(self, channel: str) -> None:
        event = self._emptied.pop(channel, None)
        if event is not None:
            event.set()

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now >= self._next_cleaning:
            self._next_cleaning = now + CLEANING_INTERVAL
            super()._clean_expired()
