"""Work that waits while the one before it runs, then goes together: how a burst of prompts, and of ends, reaches
the database.

A worker's database calls take turns in one thread (Channels' `database_sync_to_async`), and while the event loop is
busy every query of that thread also waits for the GIL. Prompts sent one transaction each therefore queue behind
each other for seconds in a burst. Batched, the prompts that arrive while one batch is at the database go in the
next one, whatever their number: one transaction, a few queries. Nothing waits for a timer: a prompt that arrives
when nothing is in flight goes at once, alone.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Answers one item of a batch (by its index) before the batch has ended.
Answer = Callable[[int, Result | Exception], None]
# A batch's items, each answered by its result or by the exception that refused it, in order.
Run = Callable[[list[Item], Answer[Result]], Awaitable[list[Result | Exception]]]


class Batches(Generic[Item, Result]):
    """Runs `run` on everything submitted while the previous batch ran, up to `most` items at a time.

    `run` sees every item it is given through to its end, even when the caller that submitted one has stopped
    waiting (its socket closed): a batch that records rows must also act on all of them. It may answer items before
    it ends, through the `answer` it is given; the others get what it returns (or what failed it).
    """

    def __init__(self, run: Run[Item, Result], *, most: int) -> None:
        self._run = run
        self._most = most
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # a server has one; the tests, one per test

    async def submit(self, item: Item) -> Result:
        """The item's result, once its batch has run; raises what refused it, or what failed the whole batch."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # what waited in another loop's batches went with that loop
            self._loop, self._waiting, self._running = loop, [], None
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((item, future))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain(), name="batches")
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
            futures = [future for _, future in batch]
            answer = functools.partial(_answer, futures)
            try:
                results = await self._run([item for item, _ in batch], answer)
            except Exception as exc:  # the whole batch failed: every item not answered yet hears why
                results = [exc] * len(batch)
            for future, result in zip(futures, results, strict=True):
                _settle(future, result)


def _answer(futures: list[asyncio.Future[Result]], index: int, result: Result | Exception) -> None:
    _settle(futures[index], result)


def _settle(future: asyncio.Future[Result], result: Result | Exception) -> None:
    if future.done():  # answered already, or its caller stopped waiting
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
