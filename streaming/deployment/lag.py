"""How late this process's event loop runs: one measure of a worker's overload.

Every delta this worker generates is read from the model in its one event loop. When the loop cannot keep up, the
model's chunks wait in the socket's buffer, where no timestamp can see them, and a timer set for now fires late by
about as long as a loop turn takes. Past `STREAMING_BUSY_MS` of that, the streams this worker generates tell their
clients with a `busy` frame (nothing is dropped: deltas merge and arrive late). Below half the threshold the worker
is well again. The other measure is the consumer's: how long a delta took from its generation to the socket.

Well before it is busy, a late loop decides who goes first (`give_way`). A new prompt's way to its first words
crosses a dozen turns of the loop (the socket, the database thread, the request, Redis, the socket again), and each
turn is as long as everything else that is ready in it, most of which is reading and relaying the streams under way.
So while the loop runs late, those streams read the model less often: what it writes meanwhile waits in the socket
(whose reading is paused: see `provider.transport.Hold`) and arrives in one read and one frame, the loop's turns
shorten, and new prompts get their first words sooner (docs/performance.md, "The first words under a burst"). While
prompts are still on their way to their first words (in a burst, for its whole length), the streams under way wait
four times as long: a stream's later delta is what the worker can best afford to send late, and the garbage collector
waits too (`collector`). A loop that is not late holds nothing back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from streaming.conf import app_settings
from streaming.deployment import metrics
from streaming.deployment.collector import collector
from streaming.provider.transport import Hold

INTERVAL = 0.1  # seconds between measurements: ten timers a second cost nothing next to the relay's work
# A loop this late (ms) at two measurements in a row runs turns of several milliseconds: the streams under way give
# way (`give_way`). Unloaded, a worker's loop runs well under a millisecond late, with a lone pause now and then (a
# garbage collection, the database thread); in a burst of prompts, 15 to 50 ms at every measurement.
LATE_MS = 5.0
# A stream under way gives way for about as many turns of the loop as a new prompt needs to its first words: a little
# under 100 ms when the loop runs a few ms late (near saturation, where longer waits would be the deltas' own
# latency), up to `STREAMING_LATE_READ_MS` in a burst.
GIVE_WAY_TURNS = 10
# ...and this many times as long while new prompts await their first words. In C = 400 bursts in a slow hour, 4 rather
# than 2 took the first words' median from +83 to +57 ms over the floor, and the deltas' p99 from 0.58 to 0.84 s
# (docs/performance.md, "The round of fee8e8a").
WHILE_PROMPTS_COME = 4


class LoopLag:
    """The last measured lag, and whether it says the worker is overloaded."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lag_ms = 0.0
        self.busy = False
        self._late_in_a_row = 0
        self.prompts_coming = 0  # this worker's streams that had not shown their first words at the last measurement

    @property
    def late(self) -> bool:
        """Whether streams that have shown their first words should give way (see `give_way`)."""
        return self._late_in_a_row >= 2

    def give_way_ms(self, *, most_ms: float) -> float:
        """How long a stream under way waits before its next read (see `give_way`): 0 while the loop is not late."""
        if not self.late:
            return 0
        return min(most_ms, GIVE_WAY_TURNS * self.lag_ms) * (WHILE_PROMPTS_COME if self.prompts_coming else 1)

    def observe(self, lag_ms: float, *, threshold_ms: float) -> None:
        self.lag_ms = lag_ms
        self._late_in_a_row = self._late_in_a_row + 1 if lag_ms >= LATE_MS else 0
        if lag_ms >= threshold_ms:
            self.busy = True
        elif lag_ms < threshold_ms / 2:
            self.busy = False

    async def watch(self, prompts_coming: Callable[[], int]) -> None:
        """Measure for as long as the process runs (one of the worker's duties), count the prompts on their way to
        their first words with `prompts_coming` each time, and hold the garbage collector while they wait on a late
        loop (`collector`)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                due = loop.time() + INTERVAL
                await asyncio.sleep(INTERVAL)
                lag_ms = (loop.time() - due) * 1000
                self.observe(lag_ms, threshold_ms=app_settings.BUSY_MS)
                self.prompts_coming = prompts_coming()
                collector.hold(prompts_waiting=self.prompts_coming > 0, late=self.late, now=loop.time())
                metrics.record_lag(lag_ms)
        finally:
            collector.let_go()


loop_lag = LoopLag()


async def give_way(hold: Hold = contextlib.nullcontext) -> None:
    """Awaited by a stream between two reads of the model once it has shown its first words: while the loop runs
    late, the next read waits for `GIVE_WAY_TURNS` turns of the loop as late as it runs now, at most
    `STREAMING_LATE_READ_MS` (0: never), four times that while new prompts await their first words. It waits in `hold`
    (the response's): its socket is not read meanwhile either, or every chunk the model writes would still cost the
    loop a wake-up, a read and a parse as it arrives."""
    if wait_ms := loop_lag.give_way_ms(most_ms=app_settings.LATE_READ_MS):
        with hold():
            await asyncio.sleep(wait_ms / 1000)
