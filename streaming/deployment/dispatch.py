"""How a socket's consumer takes its messages: each source read by a task of its own that dispatches what it reads.

Channels' consumers wait on their two sources (the socket, and the channel layer) with `await_many_dispatch`, which
for every message starts a new task to read the next one and waits for either with `asyncio.wait`. A message then
reaches its handler three turns of the event loop after it arrives (the reading task ends, `asyncio.wait` hears of
it, the consumer resumes), and in a burst a turn of a busy worker is several milliseconds: on the way of a prompt
and again of its first delta. The task and the wait per message were also about 8 % of a worker's CPU while it
relayed thousands of frames a second (docs/performance.md).

`dispatch_each` keeps Channels' rule that a consumer handles one message at a time, in the order its messages are
taken, with a lock; a message reaches its handler in the turn after it arrives, from the task that read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Source = Callable[[], Awaitable[dict[str, Any]]]


async def dispatch_each(sources: list[Source], dispatch: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Hand every message of every source to `dispatch`, one at a time, until a dispatch raises (Channels'
    `StopConsumer` included), which this raises in turn; every reader stops with it."""
    one_at_a_time = asyncio.Lock()

    async def read(source: Source) -> None:
        while True:
            message = await source()
            async with one_at_a_time:
                await dispatch(message)

    readers = [asyncio.create_task(read(source), name="consumer-source") for source in sources]
    try:
        done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
        for reader in done:
            reader.result()
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
