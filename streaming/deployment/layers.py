"""The channel layer of a deployment without Redis: Channels' in-memory layer, with its cost per message cut.

Channels' `InMemoryChannelLayer` scans every channel and group for expired entries on each send and receive,
deep-copies every message, and starts a task per member for a group send. With hundreds of sockets that is most of
what a delta costs (docs/performance.md). This layer looks for expired entries at most once a second, copies a message
shallowly (the app's messages hold only strings, numbers, booleans and None), and sends to a group's members in a
plain loop. How long it keeps a message (`expiry`) and when it drops one (a full channel) are unchanged. It adds
`behind` and `caught_up`, with which a stream holds back its next delta while a socket falls behind (see `publish`).

Group membership lasts until `group_discard`, where Channels' layer ends it in two more ways, both of which left a
socket open for good but deaf to its client's group:

- after `group_expiry` (a day by default) counted from the join. Channels has it for a process that crashes without
  discarding its channels; in memory, a process's channels die with it, and consumers always discard at disconnect.
- when a message to the channel expires. Here the expired message is dropped (memory stays bounded) and the channel
  keeps its groups; its queue, if that empties, is made anew by the next message sent to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

CLEANING_INTERVAL = 1.0
# Messages a channel may hold, not yet taken, before its member counts as behind.
BACKLOG = 4


class LocalChannelLayer(InMemoryChannelLayer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._next_cleaning = 0.0
        self._caught_up: dict[str, asyncio.Event] = {}  # set when a channel holds fewer than BACKLOG messages

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
            if queue.qsize() < BACKLOG:
                self._tell_caught_up(channel)
        return message

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            # As in Channels' layer, a full member misses the message and the others get it.
            with contextlib.suppress(ChannelFull):
                self._put(channel, message)

    async def group_discard(self, group: str, channel: str) -> None:
        await super().group_discard(group, channel)
        self._tell_caught_up(channel)  # a socket that left takes nothing more: no one waits for it

    def behind(self, group: str) -> bool:
        """Whether a member of `group` holds `BACKLOG` or more messages it has not taken yet."""
        return any(self._held(channel) >= BACKLOG for channel in self.groups.get(group, ()))

    async def caught_up(self, group: str) -> None:
        """Wait until no member of `group` is behind (callers bound the wait with a timeout)."""
        for channel in list(self.groups.get(group, ())):
            while channel in self.groups.get(group, ()) and self._held(channel) >= BACKLOG:
                await self._caught_up.setdefault(channel, asyncio.Event()).wait()

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

    def _held(self, channel: str) -> int:
        queue = self.channels.get(channel)
        return 0 if queue is None else queue.qsize()

    def _tell_caught_up(self, channel: str) -> None:
        event = self._caught_up.pop(channel, None)
        if event is not None:
            event.set()

    def _clean_expired(self) -> None:
        """Drop the messages that have outlived `expiry`, leaving every channel in its groups (see the module)."""
        now = time.monotonic()
        if now < self._next_cleaning:
            return
        self._next_cleaning = now + CLEANING_INTERVAL
        expired_before = time.time()
        for channel, queue in list(self.channels.items()):
            if queue.empty():
                continue  # a receiver waits on it: it must stay the channel's queue
            held = [queue.get_nowait() for _ in range(queue.qsize())]
            kept = [entry for entry in held if entry[0] >= expired_before]  # an entry is (expires at, message)
            for entry in kept:
                queue.put_nowait(entry)
            if len(kept) < len(held):
                if not kept:
                    del self.channels[channel]
                if len(kept) < BACKLOG:
                    self._tell_caught_up(channel)
