"""The channel layer of a deployment without Redis: Channels' in-memory layer, with its cost per message cut.

Channels' `InMemoryChannelLayer` scans every channel and group for expired entries on each send and receive,
deep-copies every message, and starts a task per member for a group send. With hundreds of sockets that is most of
what a delta costs (docs/performance.md). This layer looks for expired entries at most once a second, copies a message
shallowly (the app's messages hold only strings, numbers, booleans and None), and sends to a group's members in a
plain loop. What it keeps, for how long, and when it drops a message (a full channel) are unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

CLEANING_INTERVAL = 1.0


class LocalChannelLayer(InMemoryChannelLayer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._next_cleaning = 0.0

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
        return message

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            # As in Channels' layer, a full member misses the message and the others get it.
            with contextlib.suppress(ChannelFull):
                self._put(channel, message)

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

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now >= self._next_cleaning:
            self._next_cleaning = now + CLEANING_INTERVAL
            super()._clean_expired()
