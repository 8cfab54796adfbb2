"""The streams this process runs: each generation with its task, from its start until its end is saved.

A generation belongs to the process that started it (the one holding its upstream HTTP response), not to any socket:
this registry keeps it alive after its sockets close, and is what a cancel relayed from another worker, the drain on
shutdown and the tests reach it through.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from streaming import errors
from streaming.deployment import metrics

if TYPE_CHECKING:
    from streaming.relay.generation import Generation

logger = logging.getLogger(__name__)

_running: dict[uuid.UUID, tuple[Generation, asyncio.Task[None]]] = {}


def add(generation: Generation) -> asyncio.Task[None]:
    """Run `generation` as a task of its own and keep it until it has ended."""
    stream = generation.stream
    task = asyncio.create_task(generation.run(), name=f"stream-{stream}")
    generation.begin_reading()
    _running[stream] = (generation, task)
    metrics.stream_started(generation.model, taken_over=generation.taken_over)
    task.add_done_callback(lambda done: _forget(stream, done))
    return task


def get(stream: uuid.UUID) -> Generation | None:
    running = _running.get(stream)
    return None if running is None else running[0]


def stop_local(stream: uuid.UUID) -> None:
    """Stop a stream if this process runs it (a cancel relayed from another worker)."""
    generation = get(stream)
    if generation is not None:
        generation.stop()


def stop_all(error: errors.StreamingError) -> None:
    for generation, _ in list(_running.values()):
        generation.stop(error)


def count() -> int:
    return len(_running)


def awaiting_first_words() -> int:
    """How many of the streams begun here have not yet shown their first words: new prompts, which the streams under
    way give way to (`lag.give_way`)."""
    return sum(1 for generation, _ in _running.values() if generation.awaits_first_words)


def tasks() -> list[asyncio.Task[None]]:
    return [task for _, task in _running.values()]


async def streams_finished() -> None:
    """Wait until every stream this process runs has ended and been saved (tests and shutdown)."""
    while _running:
        await asyncio.gather(*tasks(), return_exceptions=True)


async def finish_within(seconds: float, error: errors.StreamingError) -> None:
    """Let the running streams go on for `seconds`, then stop the rest with `error`; return once all are saved.

    Waiting never cancels a stream's task: a cancelled task could not save its answer, and the log would keep the
    row `streaming` with nothing in it. Stopping goes through `Generation.stop`, which ends a stream as any other end.
    """
    pending = tasks()
    if pending:
        await asyncio.wait(pending, timeout=seconds)
    stop_all(error)
    await streams_finished()


async def hand_over_within(seconds: float) -> None:
    """Let the running streams go on for `seconds`, then stop relaying the rest without ending them, for another
    worker to take over (`STREAMING_TAKEOVER`); return once all have let go."""
    pending = tasks()
    if pending:
        await asyncio.wait(pending, timeout=seconds)
    for generation, _ in list(_running.values()):
        generation.release()
        metrics.record_takeover("handed_over")
    await streams_finished()


def _forget(stream: uuid.UUID, task: asyncio.Task[None]) -> None:
    forgotten = _running.pop(stream, None)
    if task.cancelled() and forgotten is not None:
        forgotten[0].stop()  # cancelled before its first step (the loop closing): its reader was already started
    metrics.stream_forgotten()
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        logger.error("stream %s ended with an unhandled %s at:\n%s", stream, errors.describe(exc), errors.where(exc))
