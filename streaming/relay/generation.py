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
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import openai
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from streaming import errors, protocol, services, tools
from streaming.clients import Client
from streaming.conf import app_settings
from streaming.deployment import metrics
from streaming.deployment.lag import give_way, loop_lag
from streaming.deployment.publish import frame_event, publish_event, publish_kept
from streaming.deployment.shared import Entry, SharedState, get_shared
from streaming.deployment.together import Answer, Batches
from streaming.provider.upstream import (
    Piece,
    add_usage,
    cancel_response,
    resume_pieces,
    stream_pieces,
    takes_over,
)
from streaming.relay import history
from streaming.relay.ending import CANCELLED, Ending, end_frame
from streaming.relay.handover import Handover, Plan, Resume, fields_of, fields_of_plan
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
GONE = "The server answering this stopped, and the answer could not be picked up there. The answer so far is kept."


async def _save_batch(finishes: list[services.Finish], answer: Answer[bool]) -> list[bool]:
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
        start: protocol.StartFrame | None,
        resume: Resume | None = None,
    ) -> None:
        self.stream = stream
        self.start = start  # the stream's first frame, sent by whoever started it (None: by another worker)
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
        self._outbox: Outbox | None = None
        self._stopped = False
        self._stop_error: errors.StreamingError | None = None
        self._deadline: asyncio.Timeout | None = None
        # With `STREAMING_TAKEOVER`: what another worker needs to go on with this answer is kept as it goes (see
        # `relay.handover`); `resume` is how this worker goes on with one it took over.
        self.takeover = takes_over()
        self.resume = resume
        self.response: str | None = None  # the present round's response, when the provider names it
        self._response_ended = False  # it reached its end: nothing to cancel upstream
        self._released = False  # handed over to another worker (`release`): neither ended nor cancelled here
        # Whether its row is in the log: a new stream starts while its row is being written (see `streams`).
        self._in_log: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # Open once its client's sockets have been told of it (`start`, see `recorded`): its frames wait for that.
        self._announced = asyncio.Event()
        self._announcing: asyncio.Task[None] | None = None
        # What its handover holds in Redis (see `relay.handover`), to write again should a Redis restart empty it.
        self._handover: dict[str, str | bytes] = {}
        if start is None:  # another worker's stream, taken over: its row was written long ago, its start sent
            self._in_log.set_result(True)
            self._announced.set()

    def recorded(self) -> None:
        """Its row is in the log: its end may be saved there, and its client's sockets may learn of it.

        Its `start` goes out to them only now, and its frames after it: a socket that learns of a stream finds it
        in the log, wherever it asks (a cancel that lands on another worker, the conversation API). The socket that
        asked was sent its `start` already, by its consumer; the request upstream went out at the checks.
        """
        if not self._in_log.done():
            self._in_log.set_result(True)
            self._announcing = asyncio.create_task(self._announce(), name=f"start-{self.stream}")

    def unrecorded(self, exc: BaseException) -> None:
        """Its row could not be written: stop it, the request upstream with it; it ends with an error, unlogged,
        which only the socket that asked hears of."""
        logger.error("stream %s: its prompt could not be recorded: %s", self.stream, errors.describe(exc))
        if not self._in_log.done():
            self._in_log.set_result(False)
        self._announced.set()
        self.stop(errors.NotRecorded())

    async def _announce(self) -> None:
        """Send `start` to the client's sockets; if it cannot go, stop the stream (its end is logged failed)."""
        assert self.start is not None
        event = frame_event("start", self.stream, protocol.encode(self.start))
        try:
            await publish_event(
                shared=self.shared, layer=self.layer, group=self.client.group, event=event, queued=self._announced.set
            )
        except Exception as exc:
            logger.error("stream %s: its start could not be sent: %s", self.stream, errors.describe(exc))
            self.stop(errors.StreamingError())
        finally:
            self._announced.set()

    def stop(self, error: errors.StreamingError | None = None) -> None:
        """Stop reading the model's answer: the client cancelled it (no error), or the server stopped it (error).

        The upstream HTTP response is closed as the reader unwinds.
        """
        if not self._stopped:
            self._stopped, self._stop_error = True, error
        if self._reader is not None:
            self._reader.cancel()

    @classmethod
    def of_handover(
        cls,
        *,
        stream: uuid.UUID,
        handover: Handover,
        resume: Resume,
        entries: list[Entry],
        offered: list[tools.Tool],
        layer: BaseChannelLayer,
        age: float,
    ) -> Generation:
        """A stream another worker began, to go on with here from where its record and its handover leave it.

        `age` is how long ago (seconds) the stream began, so that its duration is counted from then.
        """
        plan = handover.plan
        generation = cls(
            stream=stream,
            client=plan.client,
            model=plan.model,
            messages=plan.messages,  # type: ignore[arg-type]
            temperature=plan.temperature,
            max_tokens=plan.max_tokens,
            layer=layer,
            started=time.monotonic() - age,
            shared=get_shared(),
            offered=offered,
            start=None,
            resume=resume,
        )
        generation.timing.from_start = False
        generation.entries = list(entries)
        generation.transcript = Transcript.of_frames(entry.frame for entry in entries)
        generation.calls = list(resume.calls)
        generation._answer_chars = len(generation.transcript.answer)
        generation._reasoning_chars = len(generation.transcript.reasoning)
        generation.reasoning_field = handover.reasoning_field
        generation._handover = fields_of(handover)
        generation.usage = plan.usage
        return generation

    @property
    def awaits_first_words(self) -> bool:
        """Whether its client is still waiting for anything of the answer (text, reasoning or a tool call)."""
        return self.timing.first_output is None and self.timing.from_start

    @property
    def taken_over(self) -> bool:
        """Whether this worker took the stream over from another (see `of_handover`)."""
        return not self.timing.from_start

    def release(self) -> None:
        """Stop relaying, without ending the stream or the provider's response: another worker takes it over (a
        draining worker, past its grace, with `STREAMING_TAKEOVER`)."""
        self._released = True
        self.stop()

    def begin_reading(self) -> None:
        """Start the task that asks the model, if `run` has not yet: `running.add` calls this as it starts `run`, so
        that the request leaves at the loop's next turn rather than one turn after `run`'s first step, which in a
        burst is several milliseconds before a stream's first words."""
        if self._reader is None:
            self._outbox = Outbox(self._send, limit=app_settings.BUFFER_DELTAS)
            self._reader = asyncio.create_task(self._read(self._outbox), name=f"upstream-{self.stream}")

    async def run(self) -> None:
        self.begin_reading()
        outbox = self._outbox
        assert outbox is not None and self._reader is not None
        watchdog = asyncio.create_task(self._stop_when_nobody_watches(), name=f"watchdog-{self.stream}")
        if self._stopped:
            self._reader.cancel()
        error: errors.StreamingError | None = None
        cancelled_from_outside = False
        try:
            await self._reader
        except asyncio.CancelledError:
            if self._released and not asyncio.current_task().cancelling():
                watchdog.cancel()
                await self._hand_over(outbox)
                return
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
            if isinstance(exc, errors.UpstreamStreamError):
                self._response_ended = True  # it failed: there is nothing left to cancel
        watchdog.cancel()
        if self.takeover and self.response and not self._response_ended:
            await cancel_response(self.response)  # a background response would go on, and be billed
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

    async def _hand_over(self, outbox: Outbox) -> None:
        """Send what was read, with how far it reaches, and leave the rest to the worker that takes over."""
        try:
            await outbox.close()
        except Exception as exc:  # what did not go out is read again from the provider by the next worker
            logger.warning("stream %s: handing over, its last frames were not sent: %s", self.stream, exc)
        logger.info("stream %s handed over after relaying %d frames", self.stream, len(self.entries))

    def _failure(self, exc: Exception) -> errors.StreamingError:
        if isinstance(exc, openai.NotFoundError) and not self.timing.from_start:
            logger.warning("stream %s: its response is no longer kept by the provider", self.stream)
            return errors.Interrupted(GONE)
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
        for round in itertools.count(self.resume.round if self.resume else 1):
            last = round > app_settings.MAX_TOOL_ROUNDS
            resume, self.resume = self.resume, None
            if self.takeover and resume is None:
                await outbox.put("plan", extra=self._plan(round))
            choice: Literal["none"] | None = "none" if last else None
            said, calls = await self._respond(outbox, round, tools=offered, tool_choice=choice, resume=resume)
            if not calls:
                return
            await self._run_calls(outbox, said, calls, refuse=last)
            if last:  # the model called tools although it was told not to: what it wrote is the answer
                return

    def _plan(self, round: int) -> Plan:
        """The round's plan as it is asked; its place in the record is set when it is kept, after every frame
        before it (see `_send`)."""
        return Plan(
            client=self.client,
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            tools=[tool.name for tool in self.tools],
            round=round,
            pos=0,
            messages=list(self.messages),  # type: ignore[arg-type]
            usage=self.usage,
        )

    def _request(
        self, tools: list[ChatCompletionToolParam], tool_choice: Literal["none"] | None, resume: Resume | None
    ) -> AsyncIterator[Piece]:
        """The round's response as it is written: asked for, or re-attached to after a take-over."""
        if resume is not None and resume.response is not None:
            self.response = resume.response
            return resume_pieces(response=resume.response, after=resume.after, between_reads=give_way)
        self.response = None
        return stream_pieces(
            model=self.model,
            messages=self.messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            tools=tools or None,
            tool_choice=tool_choice if tools else None,
            between_reads=give_way,  # a stream under way gives way to new prompts while the worker runs late
        )

    async def _respond(
        self,
        outbox: Outbox,
        round: int,
        *,
        tools: list[ChatCompletionToolParam],
        tool_choice: Literal["none"] | None,
        resume: Resume | None = None,
    ) -> tuple[Said, list[MadeCall]]:
        """One response of the model, relayed as it is written: what it said, and the calls it made.

        A call is logged from the moment its name is known, so that one cut off while it is written is logged too.
        A response taken over goes on from what the round had said and called before (see `relay.handover`).
        """
        said = Said(texts=list(resume.texts) if resume else [])
        # A think block the model opens itself is over once the answer has begun.
        splitter = ThinkSplitter(inside=self.model in app_settings.THINKING_MODELS and not said.texts)
        assembler = CallAssembler(id_prefix=f"call_{self.stream.hex[:8]}_{round}_")
        made: list[MadeCall] = []
        for index, earlier in sorted(resume.round_calls.items()) if resume else ():
            assembler.resume(index, earlier.call)
            made.append(earlier)
        self.finish_reason, self._response_ended = None, False  # the last response's reason is the answer's
        async with aclosing(self._request(tools, tool_choice, resume)) as pieces:
            async for piece in pieces:
                if piece.finish_reason or piece.usage or piece.response:
                    await self._fold(piece, outbox)
                if splitter.passes_through and not piece.reasoning and not piece.calls and not piece.items:
                    if text := piece.text:  # plain answer text, once per token: kept to the fewest steps
                        if self.timing.first_text is None:
                            self.timing.output(text=True)
                        self._answer_chars += len(text)
                        said.texts.append(text)
                        await outbox.put("delta", text, mark=piece.at)
                    continue
                said.items.extend(piece.items)
                reasoning, text = splitter.feed(piece.text) if piece.text else ("", "")
                if piece.reasoning:
                    said.reasoning.append(piece.reasoning)
                    if not self.reasoning_field and self.takeover:
                        await outbox.put("handover", extra={"reasoning_field": piece.reasoning_field})
                    self.reasoning_field = self.reasoning_field or piece.reasoning_field
                    splitter.server_splits()
                await self._write(outbox, piece.reasoning + reasoning, text, said.texts, mark=piece.at)
                for fragment in piece.calls:
                    for event in assembler.add(fragment):
                        self.timing.output(text=False)
                        if isinstance(event, Opened):
                            made.append(self._made(round, next(c for c in assembler.calls if c.id == event.call)))
                            if self.takeover:  # where the rest of its arguments will come from
                                await outbox.put("handover", extra={f"index:{event.call}": str(fragment.index)})
                            await outbox.put("tool_call", extra=event, mark=piece.at)
                        else:
                            await outbox.put("tool_arguments", event.text, event.call, mark=piece.at)
        await self._write(outbox, *splitter.flush(), said.texts)
        return said, made

    def _made(self, round: int, call: Call) -> MadeCall:
        made = MadeCall(call, round, self._answer_chars, self._reasoning_chars)
        self.calls.append(made)
        return made

    async def _fold(self, piece: Piece, outbox: Outbox) -> None:
        if piece.finish_reason:
            self.finish_reason, self._response_ended = piece.finish_reason, True
        if piece.usage:
            self.usage = add_usage(self.usage, piece.usage)
        if piece.response and self.takeover:
            self.response = piece.response
            await outbox.put("handover", extra={"response": piece.response})

    async def _write(
        self, outbox: Outbox, reasoning: str, text: str, texts: list[str], mark: int | None = None
    ) -> None:
        if reasoning:
            self.timing.output(text=False)
            self._reasoning_chars += len(reasoning)
            await outbox.put("reasoning", reasoning, mark=None if text else mark)
        if text:
            self.timing.output(text=True)
            self._answer_chars += len(text)
            texts.append(text)
            await outbox.put("delta", text, mark=mark)

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
        if made.outcome is not None:  # it ran before this stream was taken over: its result was relayed
            return
        if not made.running:  # (a call taken over while it ran is run again: its tool is idempotent)
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

    async def _send(self, kind: str, text: str, extra: Any, mark: int | None) -> None:
        """Send one part of the stream (see `Outbox`) as its frame, in its place in the stream's record; or, for a
        take-over, keep what another worker would need (`relay.handover`), in order with the frames."""
        if kind in ("plan", "handover"):
            fields = fields_of_plan(replace(extra, pos=len(self.entries))) if kind == "plan" else extra
            self._handover.update(fields)
            await self.shared.note_handover(str(self.stream), fields)
            return
        if mark is not None and self.takeover:
            self._handover["after"] = str(mark)
        pos, seq, notice = len(self.entries) + 1, 0, None
        if kind == "delta":
            if loop_lag.busy and not self.told_busy:  # said just before the delta, in the same pipeline
                self.told_busy = True
                notice = self._busy_event()
            seq = len(self.transcript.deltas) + 1
        frame = protocol.encode(self._frame(kind, pos, seq, text, extra))
        await self._keep(kind, frame, seq=seq, text=text, after=mark if self.takeover else None, before=notice)

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

    async def _keep(
        self,
        kind: str,
        frame: str,
        *,
        seq: int = 0,
        end: bool = False,
        text: str = "",
        after: int | None = None,
        before: dict[str, Any] | None = None,
    ) -> None:
        """Keep a frame in the stream's record and send it, after `before` if given (see `publish_kept`); write the
        record again if Redis lost it.

        The frame joins the record in memory, and the log's transcript of it, before it is sent: once Redis has it, a
        socket may have it, and a replay from the log must reach as far.
        """
        if not self._announced.is_set():  # the stream's start goes first (see `recorded`)
            await self._announced.wait()
        entry = Entry(pos=len(self.entries) + 1, seq=seq, end=end, frame=frame)
        self.entries.append(entry)
        if not end:
            self.transcript.add(kind, frame, text)
        event = frame_event(kind, self.stream, frame, pos=entry.pos, seq=seq or None, end=end)
        stream = str(self.stream)
        whole = await publish_kept(
            shared=self.shared,
            layer=self.layer,
            group=self.client.group,
            stream=stream,
            entry=entry,
            event=event,
            after=after,
            before=before,
        )
        if not whole:
            logger.warning("stream %s: its record had lost frames (Redis restarted); writing it again", self.stream)
            await self.shared.rewrite(stream, self.entries, handover=self._handover or None)

    def _busy_event(self) -> dict[str, Any]:
        frame = protocol.busy_frame(stream=self.stream, lag_ms=loop_lag.lag_ms)
        return frame_event("busy", self.stream, protocol.encode(frame))

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
        # A new stream starts before its row is written (see `streams._admit`): its end waits for the row, and is not
        # saved if the row never came (True: its end is sent all the same).
        saved = await self._save(ending) if await self._in_log else True
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
        await self._announced.wait()
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
