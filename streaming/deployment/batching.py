"""Redis commands from many streams, sent in one pipeline per round trip.

Every delta costs Redis commands (keep it for replay, publish it). Awaited one stream at a time, each delta waits for
its own round trip, and the process spends more time in the Redis client's per-call machinery than in the commands.
A `PipelineBatcher` gathers the commands that every stream queues while a pipeline is in flight and sends them
together as the next one: a lone delta still leaves at once, and under load the batches grow instead of the queue.

It sends each batch as redis-py's pipeline would (a connection of the client's pool, its retries on a broken
connection, one write, a reply read per command), but packs the commands with hiredis in one call each and reads the
replies without the pipeline's per-command machinery (its packer's checks of every argument, a response callback per
reply). In a burst that machinery was a sixth of the worker's samples; a frame's two commands cost 18 µs of CPU
through the pipeline and 10.5 µs this way, 400 streams at once (docs/performance.md, "fewer steps per frame on the
way to Redis").
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis
import redis.asyncio as redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

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
                    async with asyncio.timeout(self._timeout):
                        results = await self._round_trip([command for commands, _ in batch for command in commands])
                except Exception as exc:  # the connection failed or timed out: every group in the batch did
                    _settle(batch, [exc] * len(batch))
                else:
                    _settle(batch, _replies(batch, results))
        finally:
            # Only when cancelled (the loop is closing) is anything left unsettled here; no caller may hang on it.
            left, self._queued = batch + self._queued, []
            _settle(left, [ConnectionError("The Redis pipeline was stopped.")] * len(left))

    async def _round_trip(self, commands: list[Command]) -> list[Any]:
        """Send `commands` in one write and read their replies (an error reply in its place), retried on a broken
        connection as the client retries any command (`Retry`: what its pipeline does too)."""
        pool = self._client.connection_pool
        connection = await pool.get_connection()
        try:
            return await connection.retry.call_with_retry(
                lambda: _send_and_read(connection, commands), lambda error: connection.disconnect()
            )
        except BaseException:
            await connection.disconnect(nowait=True)  # cancelled or failed halfway: replies may be left on it
            raise
        finally:
            await pool.release(connection)


async def _send_and_read(connection: AbstractConnection, commands: list[Command]) -> list[Any]:
    await connection.send_packed_command([hiredis.pack_command(command) for command in commands])
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except ResponseError as error:  # its command's alone: the others' replies follow it
            replies.append(error)
    return replies


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
