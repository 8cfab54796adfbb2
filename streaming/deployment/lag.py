"""How late this process's event loop runs: one measure of a worker's overload.

Every delta this worker generates is read from the model in its one event loop. When the loop cannot keep up, the
model's chunks wait in the socket's buffer, where no timestamp can see them, and a timer set for now fires late by
about as long as a loop turn takes. Past `STREAMING_BUSY_MS` of that, the streams this worker generates tell their
clients with a `busy` frame (nothing is dropped: deltas merge and arrive late). Below half the threshold the worker
is well again. The other measure is the consumer's: how long a delta took from its generation to the socket.
"""

from __future__ import annotations

import asyncio

from streaming.conf import app_settings
from streaming.deployment import metrics

INTERVAL = 0.1  # seconds between measurements: ten timers a second cost nothing next to the relay's work


class LoopLag:
    """The last measured lag, and whether it says the worker is overloaded."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lag_ms = 0.0
        self.busy = False

    def observe(self, lag_ms: float, *, threshold_ms: float) -> None:
        self.lag_ms = lag_ms
        if lag_ms >= threshold_ms:
            self.busy = True
        elif lag_ms < threshold_ms / 2:
            self.busy = False

    async def watch(self) -> None:
        """Measure for as long as the process runs (one of the worker's duties)."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + INTERVAL
            await asyncio.sleep(INTERVAL)
            lag_ms = (loop.time() - due) * 1000
            self.observe(lag_ms, threshold_ms=app_settings.BUSY_MS)
            metrics.record_lag(lag_ms)


loop_lag = LoopLag()
