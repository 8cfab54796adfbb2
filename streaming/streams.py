"""Starting and cancelling streams: the services the consumer calls, and the process's running generations.

A generation belongs to the process that started it (the one holding its upstream HTTP response), not to any
socket: `_running` keeps it alive after its sockets close, and is where a `cancel` finds it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings

from streaming import protocol, services
from streaming.clients import Client
from streaming.errors import NotFound
from streaming.generation import Generation
from streaming.upstream import available_models, demo_enabled

logger = logging.getLogger(__name__)

_running: dict[uuid.UUID, tuple[Generation, asyncio.Task[None]]] = {}


def current_limits() -> protocol.Limits:
    return protocol.Limits(
        models=available_models(),
        max_prompt_chars=settings.STREAMING_MAX_PROMPT_CHARS,
        max_tokens=settings.STREAMING_MAX_TOKENS,
        max_streams=settings.STREAMING_MAX_STREAMS,
        max_frame_bytes=settings.STREAMING_MAX_FRAME_BYTES,
    )


async def stream_start(*, client: Client, prompt: protocol.Prompt, layer: BaseChannelLayer) -> uuid.UUID:
    """Record the prompt, tell the client's sockets, and start generating; returns the stream id.

    Raises the `StreamingError`s of `services.exchange_start` before anything is sent.
    """
    started = time.monotonic()
    demo = demo_enabled()
    exchange, messages = await database_sync_to_async(services.exchange_start)(client=client, prompt=prompt, demo=demo)
    start = protocol.start_frame(stream=exchange.id, prompt=prompt, conversation=exchange.conversation_id, demo=demo)
    await layer.group_send(client.group, {"type": "stream.frame", "frame": protocol.encode(start)})
    generation = Generation(
        stream=exchange.id,
        client=client,
        model=prompt.model,
        messages=messages,
        temperature=prompt.temperature,
        max_tokens=prompt.max_tokens,
        layer=layer,
        started=started,
    )
    task = asyncio.create_task(generation.run(), name=f"stream-{exchange.id}")
    _running[exchange.id] = (generation, task)
    task.add_done_callback(lambda done: _forget(exchange.id, done))
    return exchange.id


async def stream_cancel(*, client: Client, stream: uuid.UUID) -> None:
    """Stop a running stream of this client; someone else's stream is reported as not found, not as forbidden."""
    running = _running.get(stream)
    if running is None or running[0].client.key != client.key:
        raise NotFound("That stream is not running.")
    running[0].cancel()


async def streams_finished() -> None:
    """Wait until every stream this process runs has ended and been saved (tests and shutdown)."""
    while _running:
        await asyncio.gather(*(task for _, task in list(_running.values())), return_exceptions=True)


def _forget(stream: uuid.UUID, task: asyncio.Task[None]) -> None:
    _running.pop(stream, None)
    if not task.cancelled() and task.exception() is not None:
        logger.error("stream %s ended with an unhandled error", stream, exc_info=task.exception())
