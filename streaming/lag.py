"""How late this process's event loop runs: the measure of a worker's overload.

Every delta of every stream this worker relays passes through its one event loop. When the loop cannot keep up, work
waits in its queue, and a timer set for now fires late by about as long as a delta now waits. Past
`STREAMING_BUSY_MS` of that, the worker is overloaded: nothing is dropped (deltas merge and arrive late), and each
stream it runs tells its client so, once, with a `busy` frame. Below half the threshold it is well again.
"""

from __future__ import annotations

import asyncio

from django.conf import settings

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
            self.observe((loop.time() - due) * 1000, threshold_ms=settings.STREAMING_BUSY_MS)


loop_lag = LoopLag()
