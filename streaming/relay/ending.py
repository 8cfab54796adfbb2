"""How a stream ended: the one value the log row, the end frame and a replay of the end are all made from.

A stream ends in `done` (the model finished, or the client cancelled) or `error` (the provider failed, the time limit
passed, the server stopped it). The generation that ran it, the sweep that finds its worker dead and a replay from
the log each describe the end as an `Ending`; only `end_frame` turns one into what a client reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from streaming import errors, protocol
from streaming.models import Exchange

CANCELLED = "cancelled"
STATUS_OF_ERROR = {errors.TimeLimit: Exchange.Status.INTERRUPTED, errors.Interrupted: Exchange.Status.INTERRUPTED}


@dataclass(frozen=True)
class Ending:
    status: str
    last_seq: int
    duration_ms: int | None = None
    finish_reason: str = ""
    usage: protocol.Usage | None = None
    ttft_ms: int | None = None
    error: errors.StreamingError | None = None
    first_output_ms: int | None = None

    @classmethod
    def of(
        cls,
        *,
        error: errors.StreamingError | None,
        finish_reason: str | None,
        last_seq: int,
        duration_ms: int,
        usage: protocol.Usage | None = None,
        ttft_ms: int | None = None,
        first_output_ms: int | None = None,
    ) -> Ending:
        """The end of a stream that ran here: an error, a cancel, or the model's own finish."""
        if error is not None:
            status = STATUS_OF_ERROR.get(type(error), Exchange.Status.FAILED)
            return cls(status, last_seq, duration_ms, finish_reason or "", usage, ttft_ms, error, first_output_ms)
        status = Exchange.Status.CANCELLED if finish_reason == CANCELLED else Exchange.Status.COMPLETED
        return cls(status, last_seq, duration_ms, finish_reason or "stop", usage, ttft_ms, None, first_output_ms)

    @classmethod
    def of_exchange(cls, exchange: Exchange) -> Ending:
        """The end as the log kept it."""
        error = None
        if exchange.error_code:
            error = errors.CODES.get(exchange.error_code, errors.StreamingError)(exchange.error_message)
        return cls(
            status=exchange.status,
            last_seq=exchange.last_seq,
            duration_ms=exchange.duration_ms,
            finish_reason=exchange.finish_reason,
            usage=exchange.usage(),
            ttft_ms=exchange.ttft_ms,
            error=error,
            first_output_ms=exchange.first_output_ms,
        )


def end_frame(stream: uuid.UUID | str, ending: Ending) -> protocol.DoneFrame | protocol.ErrorFrame:
    if ending.error is not None:
        return protocol.error_frame(ending.error, stream=stream)
    return protocol.done_frame(
        stream=stream,
        seq=ending.last_seq,
        finish_reason=ending.finish_reason,
        usage=ending.usage,
        ttft_ms=ending.ttft_ms,
        first_output_ms=ending.first_output_ms,
        duration_ms=ending.duration_ms or 0,
    )
