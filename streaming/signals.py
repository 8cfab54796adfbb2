"""Signals for the host product: an exchange started, an exchange ended. For analytics, billing, moderation.

Both are sent with `sender=Exchange` and `exchange=` the row, from the database thread, after the row was written:
`exchange_started` when a prompt is accepted (status `streaming`), `exchange_finished` once with its final status,
answer, timing and usage (also for a stream logged `interrupted` because its worker died). Receivers are called
with `send_robust`: one that raises is logged and cannot break a stream. A receiver that takes long delays the next
database write of the worker, so hand slow work on (a task queue).
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

exchange_started = Signal()
exchange_finished = Signal()


def send(signal: Signal, exchange: object) -> None:
    """Send `signal` for `exchange`, logging (without the traceback's locals) what a receiver raised."""
    for receiver, result in signal.send_robust(sender=type(exchange), exchange=exchange):
        if isinstance(result, Exception):
            logger.error("a receiver of %s failed: %r", receiver, result)
