"""Starting, cancelling and resuming streams: the services the consumer calls, and this process's running streams.

A generation belongs to the process that started it (the one holding its upstream HTTP response), not to any
socket: `_running` keeps it alive after its sockets close. A `cancel` or `resume` may reach any worker; the log
says whose stream it is, the control group carries a cancel to the worker running it, and the replay buffer
serves a resume wherever it lands.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings

from streaming import errors, protocol, selectors, services
from streaming.clients import Client
from streaming.generation import Generation, frame_event
from streaming.models import Exchange
from streaming.publish import publish_event
from streaming.shared import get_shared
from streaming.upstream import available_models, demo_enabled
from streaming.worker import WORKERS_GROUP, worker

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

    Raises `ShuttingDown` while this worker drains, and the errors of `services.exchange_start`, before anything
    is sent.
    """
    if worker.draining:
        raise errors.ShuttingDown()
    started = time.monotonic()
    demo = demo_enabled()
    exchange, messages = await database_sync_to_async(services.exchange_start)(
        client=client, prompt=prompt, demo=demo, worker=worker.id
    )
    shared = get_shared()
    generation = Generation(
        stream=exchange.id,
        client=client,
        model=prompt.model,
        messages=messages,
        temperature=prompt.temperature,
        max_tokens=prompt.max_tokens,
        layer=layer,
        started=started,
        shared=shared,
    )
    task = asyncio.create_task(generation.run(), name=f"stream-{exchange.id}")
    _running[exchange.id] = (generation, task)
    task.add_done_callback(lambda done: _forget(exchange.id, done))
    # The request to the model is on its way while `start` goes out; `start` still comes first, as the stream's
    # frames share one ordered path (see `publish`).
    start = protocol.start_frame(stream=exchange.id, prompt=prompt, conversation=exchange.conversation_id, demo=demo)
    try:
        await publish_event(shared=shared, layer=layer, group=client.group, event=frame_event(start))
    except Exception:
        generation.stop(errors.StreamingError())  # no socket knows of the stream: end it, logged as failed
        raise
    return exchange.id


async def stream_cancel(*, client: Client, stream: uuid.UUID, layer: BaseChannelLayer) -> None:
    """Stop a running stream of this client, on whichever worker runs it.

    Someone else's stream is reported as not found, not as forbidden, so that ids cannot be probed.
    """
    running = _running.get(stream)
    if running is not None and running[0].client.key == client.key:
        running[0].stop()
        return
    exchange = await database_sync_to_async(selectors.exchange_of_client)(client=client, stream=stream)
    if exchange.status != Exchange.Status.STREAMING:
        raise errors.NotFound("That stream is not running.")
    await layer.group_send(WORKERS_GROUP, {"type": "worker.cancel", "stream": str(stream)})


@dataclass(frozen=True)
class Replay:
    """What a socket that resumes a stream is owed: the deltas after its last, and the end if there was one."""

    texts: list[str]
    end: protocol.DoneFrame | protocol.ErrorFrame | None


async def stream_replay(*, client: Client, stream: uuid.UUID, after: int) -> Replay:
    """The deltas of one of the client's streams after `after`: from the replay buffer while the stream runs,
    from the log once it has ended and the buffer has expired."""
    exchange = await database_sync_to_async(selectors.exchange_of_client)(client=client, stream=stream)
    shared = get_shared()
    running = exchange.status == Exchange.Status.STREAMING
    last_seq = await shared.delta_count(str(stream)) if running else exchange.last_seq
    if after > last_seq:
        raise errors.BadRequest(f"'after' is beyond the last delta of that stream ({last_seq}).")
    texts = await shared.deltas_after(str(stream), after)
    if running:
        return Replay(texts=texts, end=None)
    if len(texts) != exchange.last_seq - after:
        texts = _texts_from_log(exchange, after)
    return Replay(texts=texts, end=_end_frame(exchange))


def stop_local(stream: uuid.UUID) -> None:
    """Stop a stream if this worker runs it (a cancel relayed from another worker)."""
    running = _running.get(stream)
    if running is not None:
        running[0].stop()


def stop_all(error: errors.StreamingError) -> None:
    for generation, _ in list(_running.values()):
        generation.stop(error)


def running_count() -> int:
    return len(_running)


async def streams_finished() -> None:
    """Wait until every stream this process runs has ended and been saved (tests and shutdown)."""
    while _running:
        await asyncio.gather(*(task for _, task in list(_running.values())), return_exceptions=True)


def _texts_from_log(exchange: Exchange, after: int) -> list[str]:
    starts = [0, *exchange.delta_ends]
    return [exchange.answer[starts[i] : starts[i + 1]] for i in range(after, len(exchange.delta_ends))]


def _end_frame(exchange: Exchange) -> protocol.DoneFrame | protocol.ErrorFrame:
    if exchange.error_code:
        error = errors.CODES.get(exchange.error_code, errors.StreamingError)(exchange.error_message)
        return protocol.error_frame(error, stream=exchange.id)
    return protocol.done_frame(
        stream=exchange.id,
        seq=exchange.last_seq,
        finish_reason=exchange.finish_reason,
        usage=exchange.usage(),
        ttft_ms=exchange.ttft_ms,
        duration_ms=exchange.duration_ms or 0,
    )


def _forget(stream: uuid.UUID, task: asyncio.Task[None]) -> None:
    _running.pop(stream, None)
    if not task.cancelled() and task.exception() is not None:
        logger.error("stream %s ended with an unhandled error", stream, exc_info=task.exception())
