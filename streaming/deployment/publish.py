"""Sending a stream's frames to every socket of its client, each kept in the stream's record first.

Every frame of a stream (`start`, `reasoning`, `delta`, the tool-call frames, `busy`, `done`, `error`) takes this one
path, so they arrive in the order they were sent. Every frame with a `pos`, and the end, is kept in the stream's
record (see `shared`) before it is sent, because a socket that sees a gap fills it from there, and one that missed
the end finds it there. With Redis under the pub/sub
layer on the same server (`redis_layer`), keeping and sending go in one pipeline shared with every other stream's
frames of the moment (see `batching`); any other layer takes them one after the other, through its public API.

A stream does not get far ahead of its client's sockets: what the model writes while the last delta is on its way
merges into the next one (see `outbox`). With Redis, "on its way" is the pipeline's round trip. In one process a
send returns at once, so a stream holds back while one of its sockets has several deltas it has not taken yet
(`LocalChannelLayer.behind`): otherwise an overloaded process queues deltas one by one in the sockets' channels, where
they can no longer merge, and latency grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import BaseChannelLayer

from streaming.deployment.layers import LocalChannelLayer
from streaming.deployment.redis_layer import RedisLayer
from streaming.deployment.shared import Entry, RedisState, SharedState
from streaming.errors import StoreUnavailable, StreamingError

# In one process, the longest a stream holds back for a socket that is behind before it sends anyway.
PACING_TIMEOUT = 1.0


async def publish_kept(
    *,
    shared: SharedState,
    layer: BaseChannelLayer,
    group: str,
    stream: str,
    entry: Entry,
    event: dict[str, Any],
    after: int | None = None,
    before: dict[str, Any] | None = None,
) -> bool:
    """Add a frame to its stream's record (with `after`, see `SharedState.keep`), then send it, just after `before`
    if given (a frame that is not kept: `busy`, which costs no round trip of its own this way); False when the
    record had lost earlier frames (the caller rewrites it)."""
    if _shares_pipeline(shared, layer):
        channel, message = layer.group_channel(group), layer.serialize(event)
        notice = layer.serialize(before) if before is not None else b""
        return await shared.keep_and_publish(
            stream, entry, channel=channel, message=message, before=notice, after=after
        )
    whole = await shared.keep(stream, entry, after=after)
    if before is not None:
        await _group_send(layer, group, before)
    await _group_send(layer, group, event)
    if isinstance(layer, LocalChannelLayer) and layer.behind(group):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PACING_TIMEOUT):
                await layer.caught_up(group)
    return whole


async def publish_event(
    *,
    shared: SharedState,
    layer: BaseChannelLayer,
    group: str,
    event: dict[str, Any],
    queued: Callable[[], None] | None = None,
) -> None:
    """Send a stream's frame that is not kept in its record (`start`, `busy`), in order with the kept ones.

    `queued` is called as soon as a frame kept from then on is sure to be sent after this one: with the records'
    pipeline, once the event is in line for it (a stream's first delta then need not wait a round trip for its
    `start`); with any other layer, once it is sent.
    """
    if _shares_pipeline(shared, layer):
        await shared.publish(layer.group_channel(group), layer.serialize(event), queued=queued)
        return
    await _group_send(layer, group, event)
    if queued is not None:
        queued()


def _shares_pipeline(shared: SharedState, layer: BaseChannelLayer) -> bool:
    """Whether the stream's record and the layer's messages live on one Redis server, so one pipeline does both."""
    return isinstance(shared, RedisState) and isinstance(layer, RedisLayer) and layer.publishes_on(shared.url)


async def _group_send(layer: BaseChannelLayer, group: str, event: dict[str, Any]) -> None:
    try:
        await layer.group_send(group, event)
    except StreamingError:
        raise
    except Exception as exc:  # the layer's own connection failed
        raise StoreUnavailable() from exc


def frame_event(
    kind: str,
    stream: uuid.UUID | str,
    frame: str,
    *,
    pos: int | None = None,
    seq: int | None = None,
    end: bool = False,
) -> dict[str, Any]:
    """The channel-layer message that carries a stream's frame to its client's sockets.

    The frame is encoded once for all sockets; its kind, `stream`, place in the record (`pos`, for kept frames),
    delta `seq` and `end` ride alongside so that a socket can track the stream, drop a duplicate and fill a gap
    without decoding it. `sent` (wall clock, as every worker reads the same one) tells a socket how long the frame
    waited on the way to it.
    """
    return {
        "type": "stream.frame",
        "kind": kind,
        "stream": str(stream),
        "pos": pos,
        "seq": seq,
        "end": end,
        "sent": time.time(),
        "frame": frame,
    }
