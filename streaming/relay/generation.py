"""A generation: one model answer being read from upstream and relayed to its client's sockets.

An answer may take several rounds: the model writes (reasoning, text, tool calls), the tools it called run, and it
is asked again with their results, up to `STREAMING_MAX_TOOL_ROUNDS` rounds, after which one last request asks for
the answer without tools. Everything it writes is relayed as it comes, in one ordered record.

A generation runs as its own task, apart from any consumer, so that a `cancel` is handled at once by the consumer's
receive loop and so that the answer is finished and saved even if every socket of the client closes (for up to
`STREAMING_DETACHED_SECONDS`). However it ends (see `ending`), its exchange row is updated once with how it ended,
with exactly what its frames carried (see `transcript`) and with its tool calls, and the end frame is kept in the
stream's record before it is sent, so a socket that missed it finds it there. Each frame is kept in the record
before it is sent, and the generation holds the whole record in memory too, so that it can write it again if Redis
lost it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from streaming import errors, protocol, services, tools
from streaming.clients import Client
from streaming.conf import app_settings
from streaming.deployment import metrics
from streaming.deployment.lag import loop_lag
from streaming.deployment.publish import frame_event, publish_event, publish_kept
from streaming.deployment.shared import Entry, SharedState
from streaming.deployment.together import Batches
from streaming.provider.upstream import Piece, add_usage, stream_pieces
from streaming.relay import history
from streaming.relay.ending import CANCELLED, Ending, end_frame
from streaming.relay.outbox import Outbox
from streaming.relay.thinking import ThinkSplitter
from streaming.relay.timing import Timing
from streaming.relay.tool_calls import (
    ECHOED_REASONING_FIELD,
    Answered,
    Call,
    CallAssembler,
    MadeCall,
    Opened,
    round_messages,
)
from streaming.relay.tool_outcome import STOPPED, TOO_MANY_CALLS, Outcome
from streaming.relay.transcript import Transcript

logger = logging.getLogger(__name__)

# How long the end of a stream is retried when the database refuses it; the client has its end frame meanwhile.
SAVE_RETRY_SECONDS = 120
SAVES_MOST = 100  # ends per transaction at most


async def _save_batch(finishes: list[services.Finish]) -> list[bool]:
    return await database_sync_to_async(services.exchanges_finish)(finishes=finishes)


# The ends of this process's streams, saved together when they come together (see `together`).
_saves: Batches[services.Finish, bool] = Batches(_save_batch, most=SAVES_MOST)


@dataclass
class Said:
    """What one response of the model wrote: its answer text, and the reasoning the server sent in a field of its
    own (not an inline think block), in pieces."""

    texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)  # to send back as they were (see `Piece.items`)


class Generation:
    def __init__(
        self,
        *,
        stream: uuid.UUID,
        client: Client,
        model: str,
        messages: list[ChatCompletionMessageParam],
        temperature: float | None,
        max_tokens: int | None,
        layer: BaseChannelLayer,
        started: float,
        shared: SharedState,
        offered: list[tools.Tool],
        start: protocol.StartFrame,
    ) -> None:
        self.stream = stream
        self.start = start  # the stream's first frame, sent by whoever started it
        self.client = client
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.layer = layer
        self.timing = Timing(started=started)
        self.finish_reason: str | None = None
        self.usage: protocol.Usage | None = None
        self.shared = shared
        self.entries: list[Entry] = []  # the stream's record, as kept in `shared`
        self.transcript = Transcript()  # what was sent, by kind: what is saved, by construction
        self.tools = offered  # the tools the model is offered (`tools.offered_tools`)
        self.calls: list[MadeCall] = []
        # Characters read of the answer and of the reasoning, for the offsets of tool calls.
        self._answer_chars = self._reasoning_chars = 0
        self.reasoning_field = ""  # where the server sent reasoning (see `upstream.ECHOED_REASONING_FIELD`)
        self.told_busy = False
        self._reader: asyncio.Task[None] | None = None
        self._stopped = False
        self._stop_error: errors.StreamingError | None = None
        self._deadline: asyncio.Timeout | None = None

    def stop(self, error: errors.StreamingError | None = None) -> None:
        """Stop reading the model's answer: the client cancelled it (no error), or the server stopped it (error).

        The upstream HTTP response is closed as the reader unwinds.
        """
        if not self._stopped:
            self._stopped, self._stop_error = True, error
        if self._reader is not None:
            self._reader.cancel()

    async def run(self) -> None:
        outbox = Outbox(self._send, limit=app_settings.BUFFER_DELTAS)
        self._reader = asyncio.create_task(self._read(outbox), name=f"upstream-{self.stream}")
        watchdog = asyncio.create_task(self._stop_when_nobody_watches(), name=f"watchdog-{self.stream}")
        if self._stopped:
            self._reader.cancel()
        error: errors.StreamingError | None = None
        cancelled_from_outside = False
        try:
            await self._reader
        except asyncio.CancelledError:
            if self._stopped and not asyncio.current_task().cancelling():
                error = self._stop_error
                self.finish_reason = CANCELLED if error is None else None
            else:  # the task itself was cancelled (the loop is closing): the answer so far is still saved
                cancelled_from_outside = True
                self._reader.cancel()
                error = errors.Interrupted("The server stopped before this answer was finished.")
        except TimeoutError as exc:
            error = (
                errors.TimeLimit() if self._deadline is not None and self._deadline.expired() else self._failure(exc)
            )
        except Exception as exc:  # any failure ends the stream with an error frame and a saved row
            error = self._failure(exc)
        watchdog.cancel()
        if cancelled_from_outside:
            outbox.abandon()
        else:
            try:
                await outbox.close()
            except Exception as exc:  # the deltas could not be relayed: the answer is what was
                error = error or self._failure(exc)
        await self._finish(error)
        if cancelled_from_outside:
            raise asyncio.CancelledError

    def _failure(self, exc: Exception) -> errors.StreamingError:
        error = errors.from_upstream(exc)
        if isinstance(error, errors.StoreUnavailable):
            logger.error("stream %s: Redis failed: %s", self.stream, errors.describe(exc.__cause__ or exc))
        elif error.code == "internal_error":
            logger.error("stream %s failed: %s at:\n%s", self.stream, errors.describe(exc), errors.where(exc))
        else:
            logger.warning("stream %s: upstream failed: %s", self.stream, errors.describe(exc))
        return error

    async def _read(self, outbox: Outbox) -> None:
        async with asyncio.timeout(app_settings.MAX_SECONDS) as self._deadline:
            try:
                await self._converse(outbox)
            except openai.BadRequestError as exc:
                turns = history.turn_count(self.messages)
                if not errors.is_context_overflow(exc) or not turns or self.timing.first_output is not None:
                    raise
                # The history fitted the budget but not this model's context: ask once more with half the turns.
                self.messages = history.fewer_turns(self.messages, drop=max(1, turns // 2))
                logger.info("stream %s: the model's context was exceeded; asking with fewer turns", self.stream)
                await self._converse(outbox)

    async def _converse(self, outbox: Outbox) -> None:
        """Ask the model; while it calls tools, run them and ask again with their results."""
        strict = tools.strict_schemas()
        offered = [tool.openai_tool(strict=strict) for tool in self.tools]
        for round in itertools.count(1):
            last = round > app_settings.MAX_TOOL_ROUNDS
            said, calls = await self._respond(outbox, round, tools=offered, tool_choice="none" if last else None)
            if not calls:
                return
            await self._run_calls(outbox, said, calls, refuse=last)
            if last:  # the model called tools although it was told not to: what it wrote is the answer
                return

    async def _respond(
        self, outbox: Outbox, round: int, *, tools: list[ChatCompletionToolParam], tool_choice: Literal["none"] | None
    ) -> tuple[Said, list[MadeCall]]:
        """One response of the model, relayed as it is written: what it said, and the calls it made.

        A call is logged from the moment its name is known, so that one cut off while it is written is logged too.
        """
        splitter = ThinkSplitter(inside=self.model in app_settings.THINKING_MODELS)
        assembler = CallAssembler(id_prefix=f"call_{self.stream.hex[:8]}_{round}_")
        made: list[MadeCall] = []
        said = Said()
        self.finish_reason = None  # the last response's reason is the answer's
        request = stream_pieces(
            model=self.model,
            messages=self.messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            tools=tools or None,
            tool_choice=tool_choice if tools else None,
        )
        async with aclosing(request) as pieces:
            async for piece in pieces:
                if piece.finish_reason or piece.usage:
                    self._fold(piece)
                if splitter.passes_through and not piece.reasoning and not piece.calls and not piece.items:
                    if text := piece.text:  # plain answer text, once per token: kept to the fewest steps
                        if self.timing.first_text is None:
                            self.timing.output(text=True)
                        self._answer_chars += len(text)
                        said.texts.append(text)
                        await outbox.put("delta", text)
                    continue
                said.items.extend(piece.items)
                reasoning, text = splitter.feed(piece.text) if piece.text else ("", "")
                if piece.reasoning:
                    said.reasoning.append(piece.reasoning)
                    self.reasoning_field = self.reasoning_field or piece.reasoning_field
                    splitter.server_splits()
                await self._write(outbox, piece.reasoning + reasoning, text, said.texts)
                for fragment in piece.calls:
                    for event in assembler.add(fragment):
                        self.timing.output(text=False)
                        if isinstance(event, Opened):
                            made.append(self._made(round, next(c for c in assembler.calls if c.id == event.call)))
                            await outbox.put("tool_call", extra=event)
                        else:
                            await outbox.put("tool_arguments", event.text, event.call)
        await self._write(outbox, *splitter.flush(), said.texts)
        return said, made

    def _made(self, round: int, call: Call) -> MadeCall:
        made = MadeCall(call, round, self._answer_chars, self._reasoning_chars)
        self.calls.append(made)
        return made

    def _fold(self, piece: Piece) -> None:
        if piece.finish_reason:
            self.finish_reason = piece.finish_reason
        if piece.usage:
            self.usage = add_usage(self.usage, piece.usage)

    async def _write(self, outbox: Outbox, reasoning: str, text: str, texts: list[str]) -> None:
        if reasoning:
            self.timing.output(text=False)
            self._reasoning_chars += len(reasoning)
            await outbox.put("reasoning", reasoning)
        if text:
            self.timing.output(text=True)
            self._answer_chars += len(text)
            texts.append(text)
            await outbox.put("delta", text)

    async def _run_calls(self, outbox: Outbox, said: Said, made: list[MadeCall], *, refuse: bool) -> None:
        """Run the calls of one response at once, and add them and their results to what the model is sent next.

        Past `STREAMING_TOOL_CALLS_PER_ROUND`, and in a response that was asked for without tools, a call is not
        run: the model is told so.
        """
        for one in made:  # what the model wrote after a call began still came before the call ran
            one.answer_offset, one.reasoning_offset = self._answer_chars, self._reasoning_chars
        cap = 0 if refuse else app_settings.TOOL_CALLS_PER_ROUND
        try:
            async with asyncio.TaskGroup() as group:
                for index, one in enumerate(made):
                    group.create_task(self._run_call(outbox, one, refused=index >= cap))
        except ExceptionGroup as failed:  # a relay failure (the tools' own failures are outcomes): the first says why
            raise failed.exceptions[0] from None
        echoed = self.reasoning_field == ECHOED_REASONING_FIELD
        answered = [
            Answered(one.call.id, one.call.name, one.call.arguments_text, (one.outcome or STOPPED).for_model())
            for one in made
        ]
        text, reasoning = "".join(said.texts), "".join(said.reasoning) if echoed else None
        told = round_messages(text=text, calls=answered, reasoning=reasoning, items=said.items)
        self.messages.extend(told)  # type: ignore[arg-type]

    async def _run_call(self, outbox: Outbox, made: MadeCall, *, refused: bool) -> None:
        await outbox.put("tool_running", extra=made.call.id)
        if refused:
            made.outcome = Outcome.failure(TOO_MANY_CALLS)
        else:
            made.outcome = await tools.run_call(
                name=made.call.name,
                arguments=made.call.arguments_text,
                caller=self.client,
                offered=[tool.name for tool in self.tools],
            )
        metrics.record_tool_call(made.call.name, made.outcome, offered=[tool.name for tool in self.tools])
        await outbox.put("tool_result", extra=made)

    async def _stop_when_nobody_watches(self) -> None:
        """Stop the stream once the client has had no socket open for `STREAMING_DETACHED_SECONDS`."""
        last_watched = time.monotonic()
        while True:
            await asyncio.sleep(app_settings.PRESENCE_SECONDS / 3)
            try:
                watched = await self.shared.is_present(self.client.key)
            except Exception as exc:  # without an answer, assume someone watches: stopping would lose the answer
                logger.warning("stream %s: could not check for watchers: %s", self.stream, errors.describe(exc))
                watched = True
            if watched:
                last_watched = time.monotonic()
            elif time.monotonic() - last_watched > app_settings.DETACHED_SECONDS:
                self.stop(errors.Interrupted("No one was watching this answer, so the server stopped it."))
                return

    async def _send(self, kind: str, text: str, extra: Any) -> None:
        """Send one part of the stream (see `Outbox`) as its frame, in its place in the stream's record."""
        pos, seq = len(self.entries) + 1, 0
        if kind == "delta":
            if loop_lag.busy and not self.told_busy:
                self.told_busy = True
                await self._tell_busy()
            seq = len(self.transcript.deltas) + 1
        frame = protocol.encode(self._frame(kind, pos, seq, text, extra))
        await self._keep(kind, frame, seq=seq, text=text)

    def _frame(self, kind: str, pos: int, seq: int, text: str, extra: Any) -> dict[str, Any]:
        stream = self.stream
        if kind == "delta":
            return protocol.delta_frame(stream=stream, pos=pos, seq=seq, text=text)
        if kind == "reasoning":
            return protocol.reasoning_frame(stream=stream, pos=pos, text=text)
        if kind == "tool_call":
            return protocol.tool_call_frame(stream=stream, pos=pos, call=extra.call, name=extra.name)
        if kind == "tool_arguments":
            return protocol.tool_arguments_frame(stream=stream, pos=pos, call=extra, text=text)
        if kind == "tool_running":
            return protocol.tool_running_frame(stream=stream, pos=pos, call=extra)
        outcome = extra.outcome
        return protocol.tool_result_frame(
            stream=stream,
            pos=pos,
            call=extra.call.id,
            result=outcome.result,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )

    async def _keep(self, kind: str, frame: str, *, seq: int = 0, end: bool = False, text: str = "") -> None:
        """Keep a frame in the stream's record and send it; write the record again if Redis lost it.

        The frame joins the record in memory, and the log's transcript of it, before it is sent: once Redis has it, a
        socket may have it, and a replay from the log must reach as far.
        """
        entry = Entry(pos=len(self.entries) + 1, seq=seq, end=end, frame=frame)
        self.entries.append(entry)
        if not end:
            self.transcript.add(kind, frame, text)
        event = frame_event(kind, self.stream, frame, pos=entry.pos, seq=seq or None, end=end)
        stream = str(self.stream)
        whole = await publish_kept(
            shared=self.shared, layer=self.layer, group=self.client.group, stream=stream, entry=entry, event=event
        )
        if not whole:
            logger.warning("stream %s: its record had lost frames (Redis restarted); writing it again", self.stream)
            await self.shared.rewrite(stream, self.entries)

    async def _tell_busy(self) -> None:
        frame = protocol.busy_frame(stream=self.stream, lag_ms=loop_lag.lag_ms)
        event = frame_event("busy", self.stream, protocol.encode(frame))
        await publish_event(shared=self.shared, layer=self.layer, group=self.client.group, event=event)

    async def _finish(self, error: errors.StreamingError | None) -> None:
        """Save how the stream ended, then keep and send its end frame.

        If the database refuses the row, the clients still get their end at once, and the row is saved as soon as
        the database takes it again (for up to `SAVE_RETRY_SECONDS`).
        """
        ending = Ending.of(
            error=error,
            finish_reason=self.finish_reason,
            last_seq=len(self.transcript.deltas),
            duration_ms=self.timing.duration_ms(),
            usage=self.usage,
            ttft_ms=self.timing.ttft_ms(),
            first_output_ms=self.timing.first_output_ms(),
        )
        metrics.record_end(ending, model=self.model)
        saved = await self._save(ending)
        if saved is False:
            logger.warning("stream %s was logged as ended elsewhere (taken for dead); its end is not sent", self.stream)
            return
        frame = end_frame(self.stream, ending)
        encoded = protocol.encode(frame)
        try:
            await self._keep(frame["type"], encoded, end=True)
        except Exception as exc:
            logger.error("stream %s: its end could not be kept: %s", self.stream, errors.describe(exc.__cause__ or exc))
            await self._send_unkept_end(frame["type"], encoded)
        if saved is None:
            await self._save_until_taken(ending)

    async def _send_unkept_end(self, kind: str, frame: str) -> None:
        """Without Redis in the way (another channel layer), the end still reaches the sockets; otherwise they find
        it in the log (see `ChatConsumer.recheck`)."""
        event = frame_event(kind, self.stream, frame, end=True)  # no place: a socket sends it as it comes
        try:
            await publish_event(shared=self.shared, layer=self.layer, group=self.client.group, event=event)
        except Exception as exc:
            logger.error("stream %s: its end could not be sent: %s", self.stream, errors.describe(exc.__cause__ or exc))

    async def _save(self, ending: Ending) -> bool | None:
        """Whether the row was updated (False: it had already ended), or None when the database failed."""
        try:
            finish = services.Finish(self.stream, ending, self.transcript, self.calls, self.reasoning_field)
            return await _saves.submit(finish)
        except Exception as exc:
            logger.error("stream %s: its end could not be saved: %s", self.stream, errors.describe(exc))
            return None

    async def _save_until_taken(self, ending: Ending) -> None:
        deadline, pause = time.monotonic() + SAVE_RETRY_SECONDS, 0.25
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            if await self._save(ending) is not None:
                logger.info("stream %s: its end was saved on a later try", self.stream)
                return
            pause = min(pause * 2, 8.0)
        logger.error(
            "stream %s: its end could not be saved within %d s; the row stays streaming",
            self.stream,
            SAVE_RETRY_SECONDS,
        )
