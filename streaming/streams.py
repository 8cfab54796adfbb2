"""Starting, cancelling and replaying streams: the services the consumer calls.

A generation belongs to the process that started it (see `running`). A `cancel` or `resume` may reach any worker; the
log says whose stream it is, the control group carries a cancel to the worker running it, and the stream's record
(see `shared`) serves a replay wherever it lands, the log once the record has expired.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer

from streaming import errors, instructions, protocol, selectors, services, tools
from streaming.clients import Client
from streaming.conf import app_settings
from streaming.deployment import running
from streaming.deployment.shared import Entry, Record, get_shared
from streaming.deployment.together import Answer, Batches
from streaming.deployment.worker import WORKERS_GROUP, worker
from streaming.models import Exchange
from streaming.provider.upstream import available_models, demo_enabled, sends_no_temperature
from streaming.relay import transcript
from streaming.relay.ending import Ending, end_frame
from streaming.relay.generation import Generation
from streaming.tools import Tool


def current_limits() -> protocol.Limits:
    models = available_models()
    return protocol.Limits(
        models=models,
        max_prompt_chars=app_settings.MAX_PROMPT_CHARS,
        max_tokens=app_settings.MAX_TOKENS,
        max_streams=app_settings.MAX_STREAMS,
        max_frame_bytes=app_settings.MAX_FRAME_BYTES,
        system_pinned=instructions.pinned(),
        own_temperature=tuple(model for model in models if sends_no_temperature(model)),
    )


# Prompts per transaction at most: a burst larger than this goes in several, one after the other.
BATCH_MOST = 100


@dataclass(frozen=True)
class _Asking:
    arrival: services.Arrival
    layer: BaseChannelLayer
    started: float  # monotonic, when the prompt arrived: its time to first token counts from here
    tools: list[Tool]  # offered to the model: asked of the host's hook before anything is saved


async def stream_start(
    *, client: Client, prompt: protocol.Prompt, layer: BaseChannelLayer, address: str = ""
) -> protocol.StartFrame:
    """Record the prompt and start generating; returns the `start` frame, for the socket that asked (the client's
    sockets are told once the prompt's row is in the log).

    `address` is the hash of where the prompt came from, which the budgets of anonymous clients count by.

    Raises `ShuttingDown` while this worker drains, and the refusals of `services.exchanges_start`, before anything
    is sent.
    """
    if worker.draining:
        raise errors.ShuttingDown()
    started = time.monotonic()
    offered = tools.offered_tools(caller=client, model=prompt.model)  # a hook that raises refuses the prompt here
    asking = _Asking(services.Arrival(client, prompt, address), layer, started, offered)
    generation = await _admission.submit(asking)
    # The request to the model is on its way. The client's other sockets are told of the stream once its row is in
    # the log (`Generation.recorded`); this one is sent `start` by its consumer now.
    return generation.start


async def _admit(batch: list[_Asking], answer: Answer[Generation]) -> list[Generation | Exception]:
    """Check and record a batch of prompts in one transaction, and start generating each one admitted as soon as
    the checks have passed, while its row is being written: the request goes upstream without waiting for the
    insert, which in a burst is half of the batch's time (docs/performance.md). Its answer is generated even if the
    socket that asked has closed meanwhile, since its row is written; if the rows cannot be written, each of the
    batch's streams is stopped (its request upstream with it) and ends with an error, unlogged."""
    demo = demo_enabled()
    loop = asyncio.get_running_loop()
    # The streams start in this task's context, not the database thread's, whose marks would make their own
    # database calls look like a deadlock to asgiref.
    context = contextvars.copy_context()
    started: list[Generation | Exception] = []
    failed = False

    def start(outcomes: list[services.Admitted | Exception]) -> None:
        if started or failed:
            return
        for index, (asking, outcome) in enumerate(zip(batch, outcomes, strict=True)):
            started.append(outcome if isinstance(outcome, Exception) else _generate(asking, *outcome, demo=demo))
            answer(index, started[-1])

    try:
        outcomes = await database_sync_to_async(services.exchanges_start)(
            arrivals=[asking.arrival for asking in batch],
            demo=demo,
            worker=worker.id,
            checked=lambda outcomes: loop.call_soon_threadsafe(start, outcomes, context=context),
        )
    except BaseException as exc:  # cancelled too (the loop is closing): whether the rows went in is not known
        failed = True
        for generation in started:
            if isinstance(generation, Generation):
                generation.unrecorded(exc)
        raise
    start(outcomes)  # in case the loop had not run it yet
    for generation in started:
        if isinstance(generation, Generation):
            generation.recorded()
    return started


def _generate(asking: _Asking, exchange: Exchange, messages: list, *, demo: bool) -> Generation:
    prompt = asking.arrival.prompt
    generation = Generation(
        stream=exchange.id,
        client=asking.arrival.client,
        model=prompt.model,
        messages=messages,
        temperature=prompt.temperature,
        max_tokens=prompt.max_tokens,
        layer=asking.layer,
        started=asking.started,
        shared=get_shared(),
        offered=asking.tools,
        start=protocol.start_frame(
            stream=exchange.id,
            prompt=prompt,
            content=exchange.prompt,
            conversation=exchange.conversation_id,
            parent=exchange.parent_id,
            demo=demo,
        ),
    )
    running.add(generation)
    return generation


_admission: Batches[_Asking, Generation] = Batches(_admit, most=BATCH_MOST)


async def stream_cancel(*, client: Client, stream: uuid.UUID, layer: BaseChannelLayer) -> None:
    """Stop a running stream of this client, on whichever worker runs it.

    Someone else's stream is reported as not found, not as forbidden, so that ids cannot be probed.
    """
    if _stop_here(client, stream):
        return
    exchange = await database_sync_to_async(selectors.exchange_of_client)(client=client, stream=stream)
    if exchange.status != Exchange.Status.STREAMING:
        raise errors.NotFound("That stream is not running.")
    await layer.group_send(WORKERS_GROUP, {"type": "worker.cancel", "stream": str(stream)})


async def streams_cancel(*, client: Client, streams: list[uuid.UUID], layer: BaseChannelLayer) -> None:
    """Stop streams the log has just said are this client's and running (a conversation being deleted: see
    `services.conversation_delete`), on whichever worker runs them; each ends `cancelled`, its partial answer kept.
    A stream that has ended meanwhile is left alone by the worker the cancel reaches."""
    for stream in streams:
        if not _stop_here(client, stream):
            await layer.group_send(WORKERS_GROUP, {"type": "worker.cancel", "stream": str(stream)})


def _stop_here(client: Client, stream: uuid.UUID) -> bool:
    """Stop the stream if this process runs it for this client; whether it did."""
    generation = running.get(stream)
    if generation is None or generation.client.key != client.key:
        return False
    generation.stop()
    return True


@dataclass(frozen=True)
class Replay:
    """What a socket that follows a stream from a place in its record (or, for a protocol-1 client, from a delta's
    `seq`) is owed: the frames it has not had, as sent, in order;
    the place in the stream's record that leaves it at (None while the record has a hole: the generation writes it
    again with its next frame); the last delta's `seq`; and whether the stream has ended."""

    frames: list[str]
    pos: int | None
    seq: int
    ended: bool


def replay_from_record(entries: list[Entry], after: int, pos: int | None = None) -> Replay | None:
    """The frames of a whole record (from its first place) after place `pos`, or else after delta `after`; None if
    the record does not reach that far."""
    if pos is not None:
        start = pos if pos <= len(entries) else -1
    elif after:
        start = next((index + 1 for index, entry in enumerate(entries) if entry.seq == after), -1)
    else:
        start = 0
    if start < 0:
        return None
    rest = entries[start:]
    seqs = [entry.seq for entry in entries if entry.seq]
    return Replay(
        frames=[entry.frame for entry in rest],
        pos=entries[-1].pos if entries else 0,
        seq=seqs[-1] if seqs else 0,
        ended=any(entry.end for entry in rest),
    )


def replay_from_log(exchange: Exchange, after: int, pos: int | None = None) -> Replay:
    """The frames after place `pos`, or else after delta `after`, and the end, from the row of an ended stream."""
    layout = exchange.layout
    if pos is not None:
        if pos > len(layout):
            raise errors.BadRequest(f"'pos' is beyond the last frame of that stream ({len(layout)}).")
        start = pos
    else:
        if after > exchange.last_seq:
            raise errors.BadRequest(f"'after' is beyond the last delta of that stream ({exchange.last_seq}).")
        start = transcript.place_after_delta(layout, after) or 0
    frames = transcript.replay(exchange.id, answer=exchange.answer, reasoning=exchange.reasoning, layout=layout)
    frames = [*frames[start:], protocol.encode(end_frame(exchange.id, Ending.of_exchange(exchange)))]
    return Replay(frames=frames, pos=None, seq=exchange.last_seq, ended=True)


async def stream_replay(*, client: Client, stream: uuid.UUID, after: int, pos: int | None = None) -> Replay:
    """What a socket that has one of the client's streams up to place `pos` of its record, or (a protocol-1 client)
    up to delta `after`, is owed: from the stream's record while it runs and just after, from the log once the record
    has expired or lost its end."""
    exchange = await database_sync_to_async(selectors.exchange_of_client)(client=client, stream=stream)
    try:
        record = await get_shared().entries_after(str(stream), 0)
    except errors.StoreUnavailable:
        if exchange.status == Exchange.Status.STREAMING:
            raise
        record = Record([], whole=False)  # an ended stream is in the log
    replay = replay_from_record(record.entries, after, pos) if record.whole else None
    if replay is not None and (replay.ended or exchange.status == Exchange.Status.STREAMING):
        return replay
    if exchange.status != Exchange.Status.STREAMING:
        return replay_from_log(exchange, after, pos)
    if record.whole and pos is not None:
        raise errors.BadRequest(f"'pos' is beyond the last frame of that stream ({len(record.entries)}).")
    if record.whole:
        last = max((entry.seq for entry in record.entries), default=0)
        raise errors.BadRequest(f"'after' is beyond the last delta of that stream ({last}).")
    return Replay(frames=[], pos=None, seq=after, ended=False)  # the record is being written again: frames follow
