"""A generation: one model answer being read from upstream and relayed to its client's sockets.

A generation runs as its own task, apart from any consumer, so that a `cancel` is handled at once by the consumer's
receive loop and so that the answer is finished and saved even if every socket of the client closes (for up to
`STREAMING_DETACHED_SECONDS`). However it ends (see `ending`), its exchange row is updated once with how it ended and
with exactly the text its deltas carried, and the end frame is kept in the stream's record before it is sent, so a
socket that missed it finds it there. Each frame is kept in the record before it is sent, and the generation holds
the whole record in memory too, so that it can write it again if Redis lost it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass

import openai
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings
from openai.types.chat import ChatCompletionMessageParam

from streaming import errors, history, protocol, services
from streaming.answer import Answer
from streaming.clients import Client
from streaming.ending import CANCELLED, Ending, end_frame
from streaming.lag import loop_lag
from streaming.outbox import Outbox
from streaming.publish import frame_event, publish_event, publish_kept
from streaming.shared import Entry, SharedState
from streaming.upstream import stream_pieces

logger = logging.getLogger(__name__)

# How long the end of a stream is retried when the database refuses it; the client has its end frame meanwhile.
SAVE_RETRY_SECONDS = 120


@dataclass
class Timing:
    """Milliseconds from accepting the prompt, measured on the monotonic clock."""

    started: float
    first_piece: float | None = None

    def ttft_ms(self) -> int | None:
        return None if self.first_piece is None else round((self.first_piece - self.started) * 1000)

    def duration_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)


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
    ) -> None:
        self.stream = stream
        self.client = client
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.layer = layer
        self.timing = Timing(started=started)
        self.answer = Answer()
        self.shared = shared
        self.entries: list[Entry] = []  # the stream's record, as kept in `shared`
        self.sent: list[str] = []  # the text of each delta sent: what is saved, by construction
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
        outbox = Outbox(self._send_delta, limit=settings.STREAMING_BUFFER_DELTAS)
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
                self.answer.finish_reason = CANCELLED if error is None else None
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
        async with asyncio.timeout(settings.STREAMING_MAX_SECONDS) as self._deadline:
            try:
                await self._relay(outbox)
            except openai.BadRequestError as exc:
                turns = history.turn_count(self.messages)
                if not errors.is_context_overflow(exc) or not turns or self.answer.parts:
                    raise
                # The history fitted the budget but not this model's context: ask once more with half the turns.
                self.messages = history.fewer_turns(self.messages, drop=max(1, turns // 2))
                logger.info("stream %s: the model's context was exceeded; asking with fewer turns", self.stream)
                await self._relay(outbox)

    async def _relay(self, outbox: Outbox) -> None:
        async with (
            aclosing(
                stream_pieces(
                    model=self.model,
                    messages=self.messages,
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                )
            ) as pieces,
        ):
            async for piece in pieces:
                self.answer.add(piece)
                if piece.text:
                    if self.timing.first_piece is None:
                        self.timing.first_piece = time.monotonic()
                    await outbox.put(piece.text)

    async def _stop_when_nobody_watches(self) -> None:
        """Stop the stream once the client has had no socket open for `STREAMING_DETACHED_SECONDS`."""
        last_watched = time.monotonic()
        while True:
            await asyncio.sleep(settings.STREAMING_PRESENCE_SECONDS / 3)
            try:
                watched = await self.shared.is_present(self.client.key)
            except Exception as exc:  # without an answer, assume someone watches: stopping would lose the answer
                logger.warning("stream %s: could not check for watchers: %s", self.stream, errors.describe(exc))
                watched = True
            if watched:
                last_watched = time.monotonic()
            elif time.monotonic() - last_watched > settings.STREAMING_DETACHED_SECONDS:
                self.stop(errors.Interrupted("No one was watching this answer, so the server stopped it."))
                return

    async def _send_delta(self, seq: int, text: str) -> None:
        if loop_lag.busy and not self.told_busy:
            self.told_busy = True
            await self._tell_busy()
        frame = protocol.encode(protocol.delta_frame(stream=self.stream, seq=seq, text=text))
        await self._keep("delta", frame, seq=seq)
        self.sent.append(text)

    async def _keep(self, kind: str, frame: str, *, seq: int = 0, end: bool = False) -> None:
        """Keep a frame in the stream's record and send it; write the record again if Redis lost it."""
        entry = Entry(pos=len(self.entries) + 1, seq=seq, end=end, frame=frame)
        self.entries.append(entry)
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
            finish_reason=self.answer.finish_reason,
            last_seq=len(self.sent),
            duration_ms=self.timing.duration_ms(),
            usage=self.answer.usage,
            ttft_ms=self.timing.ttft_ms(),
        )
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
            return await database_sync_to_async(services.exchange_finish)(
                exchange_id=self.stream, ending=ending, answer="".join(self.sent), delta_texts=self.sent
            )
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
