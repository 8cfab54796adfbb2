"""Sending a stream's frames to every socket of its client, deltas kept for replay first.

Every frame of a stream (`start`, `delta`, `busy`, `done`, `error`) takes this one path, so they arrive in the order
they were sent. A delta is kept in the replay buffer before it is sent, because a socket that sees a gap in `seq`
fills it from there. With Redis under the pub/sub layer, keeping and sending go in one pipeline shared with every
other stream's frames of the moment (see `batching`); any other layer takes them one after the other.

A stream does not get far ahead of its client's sockets: what the model writes while the last delta is on its way
merges into the next one (see `outbox`). With Redis, "on its way" is the pipeline's round trip. In one process a
send returns at once, so a stream holds back while one of its sockets has several deltas it has not taken yet
(`LocalChannelLayer.behind`): otherwise an overloaded process queues deltas one by one in the sockets' channels, where
they can no longer merge, and latency grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.layers import BaseChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from streaming.layers import LocalChannelLayer
from streaming.shared import RedisState, SharedState

# In one process, the longest a stream holds back for a socket that is behind before it sends anyway.
PACING_TIMEOUT = 1.0


async def publish_delta(
    *,
    shared: SharedState,
    layer: BaseChannelLayer,
    group: str,
    stream: str,
    seq: int,
    text: str,
    event: dict[str, Any],
) -> None:
    if isinstance(shared, RedisState) and isinstance(layer, RedisPubSubChannelLayer):
        channel, message = group_channel(layer, group), layer.serialize(event)
        await shared.append_and_publish(stream, seq, text, channel=channel, message=message)
    else:
        await shared.append_delta(stream, seq, text)
        await layer.group_send(group, event)
        if isinstance(layer, LocalChannelLayer) and layer.behind(group):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PACING_TIMEOUT):
                    await layer.caught_up(group)


async def publish_event(*, shared: SharedState, layer: BaseChannelLayer, group: str, event: dict[str, Any]) -> None:
    """Send a stream's frame that is not kept for replay (all but deltas), in order with its deltas."""
    if isinstance(shared, RedisState) and isinstance(layer, RedisPubSubChannelLayer):
        await shared.publish(group_channel(layer, group), layer.serialize(event))
    else:
        await layer.group_send(group, event)


def group_channel(layer: RedisPubSubChannelLayer, group: str) -> str:
    """The Redis channel the layer publishes a group's messages on, as the layer names it (a test pins the two
    together; asking the layer costs a lookup of its per-loop state on every delta). Settings give the layer one
    Redis host, so there is one shard, and it is the Redis the shared state uses."""
    return f"{layer._kwargs.get('prefix', 'asgi')}__group__{group}"
