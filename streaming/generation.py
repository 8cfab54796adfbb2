"""A generation: one model answer being read from upstream and relayed to its client's sockets.

A generation runs as its own task, apart from any consumer, so that a `cancel` is handled at once by the consumer's
receive loop and so that the answer is finished and saved even if every socket of the client closes (for up to
`STREAMING_DETACHED_SECONDS`). It ends in exactly one of: `done` (the model finished, or the client cancelled) or
`error` (the provider failed, the time limit passed, the server stopped it), and in every case its exchange row is
updated once with how it ended. Each delta is kept in the replay buffer before it is sent, so a socket that missed
it can always fetch it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings
from openai.types.chat import ChatCompletionMessageParam

from streaming import errors, protocol, services
from streaming.answer import Answer
from streaming.clients import Client
from streaming.lag import loop_lag
from streaming.models import Exchange
from streaming.outbox import Outbox
from streaming.publish import publish_delta, publish_event
from streaming.shared import SharedState
from streaming.upstream import stream_pieces

logger = logging.getLogger(__name__)

CANCELLED = "cancelled"
STATUS_OF_ERROR = {errors.TimeLimit: Exchange.Status.INTERRUPTED, errors.Interrupted: Exchange.Status.INTERRUPTED}


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
        self.delta_ends: list[int] = []
        self.told_busy = False
        self._reader: asyncio.Task[None] | None = None
        self._stopped = False
        self._stop_error: errors.StreamingError | None = None

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
        try:
            await self._reader
        except asyncio.CancelledError:
            if not self._stopped or asyncio.current_task().cancelling():
                outbox.abandon()
                watchdog.cancel()
                raise
            error = self._stop_error
            self.answer.finish_reason = CANCELLED if error is None else None
        except TimeoutError:
            error = errors.TimeLimit()
        except Exception as exc:  # any failure ends the stream with an error frame and a saved row
            error = errors.from_upstream(exc)
            if error.code == "internal_error":
                logger.exception("stream %s failed", self.stream)
            else:
                logger.warning("stream %s: upstream failed: %r", self.stream, exc)
        watchdog.cancel()
        try:
            last_seq = await outbox.close()
        except Exception:
            logger.exception("stream %s: could not relay deltas", self.stream)
            last_seq, error = outbox.seq, error or errors.StreamingError()
        await self._finish(last_seq=last_seq, error=error)

    async def _read(self, outbox: Outbox) -> None:
        async with (
            asyncio.timeout(settings.STREAMING_MAX_SECONDS),
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
            except Exception:  # without an answer, assume someone watches: stopping would lose the answer
                logger.exception("stream %s: could not check for watchers", self.stream)
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
        event = frame_event(protocol.delta_frame(stream=self.stream, seq=seq, text=text), seq=seq)
        await publish_delta(
            shared=self.shared,
            layer=self.layer,
            group=self.client.group,
            stream=str(self.stream),
            seq=seq,
            text=text,
            event=event,
        )
        self.delta_ends.append((self.delta_ends[-1] if self.delta_ends else 0) + len(text))

    async def _tell_busy(self) -> None:
        await self._publish(frame_event(protocol.busy_frame(stream=self.stream, lag_ms=loop_lag.lag_ms)))

    async def _publish(self, event: dict[str, Any]) -> None:
        await publish_event(shared=self.shared, layer=self.layer, group=self.client.group, event=event)

    async def _finish(self, *, last_seq: int, error: errors.StreamingError | None) -> None:
        duration_ms = self.timing.duration_ms()
        finish_reason = self.answer.finish_reason
        if error is not None:
            status = STATUS_OF_ERROR.get(type(error), Exchange.Status.FAILED)
            frame: dict = protocol.error_frame(error, stream=self.stream)
        else:
            status = Exchange.Status.CANCELLED if finish_reason == CANCELLED else Exchange.Status.COMPLETED
            finish_reason = finish_reason or "stop"
            frame = protocol.done_frame(
                stream=self.stream,
                seq=last_seq,
                finish_reason=finish_reason,
                usage=self.answer.usage,
                ttft_ms=self.timing.ttft_ms(),
                duration_ms=duration_ms,
            )
        await database_sync_to_async(services.exchange_finish)(
            exchange_id=self.stream,
            status=status,
            answer=self.answer.text,
            last_seq=last_seq,
            delta_ends=self.delta_ends,
            duration_ms=duration_ms,
            finish_reason=finish_reason,
            ttft_ms=self.timing.ttft_ms(),
            usage=self.answer.usage,
            error=error,
        )
        await self._publish(frame_event(frame, end=True))


def frame_event(frame: dict[str, Any], *, seq: int | None = None, end: bool = False) -> dict[str, Any]:
    """The channel-layer message that carries a stream's frame to its client's sockets.

    The frame is encoded once for all sockets; its kind, `stream`, `seq` and `end` ride alongside so that a socket
    can track the stream, drop a duplicate and fill a gap without decoding it. `sent` (wall clock, as every worker
    reads the same one) tells a socket how long the frame waited on the way to it.
    """
    return {
        "type": "stream.frame",
        "kind": frame["type"],
        "stream": frame["stream"],
        "seq": seq,
        "end": end,
        "sent": time.time(),
        "frame": protocol.encode(frame),
    }
