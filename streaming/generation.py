"""A generation: one model answer being read from upstream and relayed to its client's sockets.

A generation runs as its own task, apart from any consumer, so that a `cancel` is handled at once by the consumer's
receive loop and so that the answer is finished and saved even if every socket of the client closes. It ends in
exactly one of: `done` (the model finished, or the client cancelled) or `error` (the provider failed, or the time
limit passed), and in both cases its exchange row is updated once with how it ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings
from openai.types.chat import ChatCompletionMessageParam

from streaming import errors, protocol, services
from streaming.answer import Answer
from streaming.clients import Client
from streaming.models import Exchange
from streaming.outbox import Outbox
from streaming.upstream import stream_pieces

logger = logging.getLogger(__name__)

CANCELLED = "cancelled"


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
        self._reader: asyncio.Task[None] | None = None
        self._cancel_requested = False

    def cancel(self) -> None:
        """Stop reading the model's answer; its HTTP response is closed as the reader unwinds."""
        self._cancel_requested = True
        if self._reader is not None:
            self._reader.cancel()

    async def run(self) -> None:
        outbox = Outbox(self._send_delta, limit=settings.STREAMING_BUFFER_DELTAS)
        self._reader = asyncio.create_task(self._read(outbox), name=f"upstream-{self.stream}")
        if self._cancel_requested:
            self._reader.cancel()
        error: errors.StreamingError | None = None
        try:
            await self._reader
        except asyncio.CancelledError:
            if not self._cancel_requested or asyncio.current_task().cancelling():
                outbox.abandon()
                raise
            self.answer.finish_reason = CANCELLED
        except TimeoutError:
            error = errors.TimeLimit()
        except Exception as exc:  # any failure ends the stream with an error frame and a saved row
            error = errors.from_upstream(exc)
            if error.code == "internal_error":
                logger.exception("stream %s failed", self.stream)
            else:
                logger.warning("stream %s: upstream failed: %r", self.stream, exc)
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

    async def _send_delta(self, seq: int, text: str) -> None:
        await self._broadcast(protocol.delta_frame(stream=self.stream, seq=seq, text=text))

    async def _finish(self, *, last_seq: int, error: errors.StreamingError | None) -> None:
        duration_ms = self.timing.duration_ms()
        finish_reason = self.answer.finish_reason
        if error is not None:
            status = Exchange.Status.INTERRUPTED if isinstance(error, errors.TimeLimit) else Exchange.Status.FAILED
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
            duration_ms=duration_ms,
            finish_reason=finish_reason,
            ttft_ms=self.timing.ttft_ms(),
            usage=self.answer.usage,
            error=error,
        )
        await self._broadcast(frame)

    async def _broadcast(self, frame: dict) -> None:
        await self.layer.group_send(self.client.group, {"type": "stream.frame", "frame": protocol.encode(frame)})
