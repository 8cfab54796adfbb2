"""Redis commands from many streams, sent in one pipeline per round trip.

Every delta costs Redis commands (keep it for replay, publish it). Awaited one stream at a time, each delta waits for
its own round trip, and the process spends more time in the Redis client's per-call machinery than in the commands.
A `PipelineBatcher` gathers the commands that every stream queues while a pipeline is in flight and sends them
together as the next one: a lone delta still leaves at once, and under load the batches grow instead of the queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis

Command = tuple[Any, ...]
Queued = tuple[tuple[Command, ...], asyncio.Future[list[Any]]]


class PipelineBatcher:
    """Runs groups of commands in order, many groups per pipeline.

    The commands of one `execute` call run in the order given, after those of every earlier call, so a stream that
    awaits each call before the next keeps its order.
    """

    def __init__(self, client: redis.Redis, *, timeout: float | None = None) -> None:
        self._client = client
        self._timeout = timeout
        self._queued: list[Queued] = []
        self._sender: asyncio.Task[None] | None = None

    async def execute(self, *commands: Command) -> list[Any]:
        """Run `commands` (each a tuple such as `("PUBLISH", channel, message)`) with the next pipeline; returns their
        replies.

        Raises the error of the first of them that failed, or the connection's error.
        """
        return await self.submit(*commands)

    def submit(self, *commands: Command) -> asyncio.Future[list[Any]]:
        """`execute`, whose commands take their place in line at once: whatever is submitted after this call runs
        after them, although their replies have not come yet."""
        future = asyncio.get_running_loop().create_future()
        self._queued.append((commands, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="redis-pipeline")
        return future

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self) -> None:
        batch: list[Queued] = []
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    async with asyncio.timeout(self._timeout), self._client.pipeline(transaction=False) as pipe:
                        for commands, _ in batch:
                            for command in commands:
                                pipe.execute_command(*command)
                        results = await pipe.execute(raise_on_error=False)
                except Exception as exc:  # the connection failed or timed out: every group in the batch did
                    _settle(batch, [exc] * len(batch))
                else:
                    _settle(batch, _replies(batch, results))
        finally:
            # Only when cancelled (the loop is closing) is anything left unsettled here; no caller may hang on it.
            left, self._queued = batch + self._queued, []
            _settle(left, [ConnectionError("The Redis pipeline was stopped.")] * len(left))


def _replies(batch: list[Queued], results: list[Any]) -> list[list[Any] | Exception]:
    """Per group, its replies, or the first of its commands that failed: one group's failure is not another's."""
    outcomes: list[list[Any] | Exception] = []
    position = 0
    for commands, _ in batch:
        own = results[position : position + len(commands)]
        position += len(commands)
        outcomes.append(next((result for result in own if isinstance(result, Exception)), own))
    return outcomes


def _settle(batch: list[Queued], outcomes: list[list[Any] | Exception]) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue  # its caller was cancelled
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
