"""While new prompts await their first words on a late loop, the garbage collector waits.

Every new stream builds a few hundred objects that live as long as it does (its task, its response, its buffers), and
CPython's collector walks each of them more than once on the way to its oldest generation. In the benchmark's burst of
400 prompts a dozen collections of the youngest generation and one of the middle one took 80 to 190 ms of the
worker's first two seconds, the middle one stopping the loop for 55 to 113 ms at once (docs/performance.md, "The
collector waits"). Nothing needs that work done then: the garbage of reference cycles can wait a few seconds in
memory, and the collections run once the first words are out, where a pause delays the streams under way instead of
someone's first word.

A hold starts when prompts await their first words on a late loop and lasts until none does, at most `MOST_HELD_S`, so
that a worker late for good still collects; a collector turned off by someone else (the host's own code) stays off.
The lag's measurement (`lag.LoopLag.watch`) decides, ten times a second.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

MOST_HELD_S = 3.0


class Collector:
    """Holds CPython's automatic collection, and lets it go, as `hold` is told. The collector's switches are
    arguments so that a test can watch them without turning the test process's own collector off."""

    def __init__(
        self,
        *,
        isenabled: Callable[[], bool] = gc.isenabled,
        enable: Callable[[], None] = gc.enable,
        disable: Callable[[], None] = gc.disable,
    ) -> None:
        self._isenabled, self._enable, self._disable = isenabled, enable, disable
        self._wanted_since: float | None = None
        self.holding = False

    def hold(self, *, prompts_waiting: bool, late: bool, now: float) -> None:
        """Hold the collector from when prompts await their first words on a late loop until none does, for at most
        `MOST_HELD_S` in a row. Lateness only starts a hold: a loop that is on time for one measurement in the middle
        of a burst would otherwise get every collection it owes at once. `now` in seconds, of any one clock."""
        if not prompts_waiting:
            self._wanted_since = None
            self.let_go()
            return
        if self._wanted_since is None:
            if not late:
                return
            self._wanted_since = now
        if now - self._wanted_since >= MOST_HELD_S:
            self.let_go()
        elif not self.holding and self._isenabled():
            self._disable()
            self.holding = True

    def let_go(self) -> None:
        """Let the collector run again, if this held it: the collections it owes run at the next allocations."""
        if self.holding:
            self.holding = False
            self._enable()


collector = Collector()
