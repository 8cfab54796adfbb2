"""How a consumer takes its messages (`deployment.dispatch`): in the loop's next turn, one at a time, until a handler
ends it."""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import StopConsumer
from channels.utils import await_many_dispatch

from streaming.deployment.dispatch import dispatch_each


async def turns_until(condition, most: int = 10) -> int:
    """How many turns of the loop pass before `condition()` holds."""
    for turn in range(most + 1):
        if condition():
            return turn
        await asyncio.sleep(0)
    return most + 1


@pytest.mark.parametrize(("run", "turns"), [(dispatch_each, 1), (await_many_dispatch, 3)])
async def test_a_message_reaches_its_handler_in_the_turn_after_it_arrives(run, turns):
    """Channels' own loop takes three turns, each several milliseconds on a busy worker; kept here as the measure."""
    socket, layer = asyncio.Queue(), asyncio.Queue()
    handled = []

    async def handle(message):
        handled.append(message)

    consumer = asyncio.create_task(run([socket.get, layer.get], handle))
    await turns_until(lambda: False, most=3)  # both sources are being read

    layer.put_nowait({"type": "stream.frame"})
    assert await turns_until(lambda: handled) == turns
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)


async def test_messages_are_handled_one_at_a_time_in_the_order_they_are_taken():
    socket, layer = asyncio.Queue(), asyncio.Queue()
    handling, release, log = asyncio.Event(), asyncio.Event(), []

    async def handle(message):
        log.append(("begin", message["n"]))
        if message["n"] == 1:
            handling.set()
            await release.wait()  # a handler that awaits: the other source's message waits for it
        log.append(("end", message["n"]))
        if message["n"] == 3:
            raise StopConsumer()

    consumer = asyncio.create_task(dispatch_each([socket.get, layer.get], handle))
    socket.put_nowait({"n": 1})
    await handling.wait()
    layer.put_nowait({"n": 2})
    socket.put_nowait({"n": 3})
    await turns_until(lambda: False, most=3)
    assert log == [("begin", 1)]
    release.set()

    with pytest.raises(StopConsumer):
        await asyncio.wait_for(consumer, 5)
    assert log == [("begin", 1), ("end", 1), ("begin", 2), ("end", 2), ("begin", 3), ("end", 3)]


async def test_a_handler_that_fails_ends_it_with_its_error_and_stops_every_reader():
    socket, layer = asyncio.Queue(), asyncio.Queue()
    stopped = []

    async def read_layer():
        try:
            return await layer.get()
        except asyncio.CancelledError:
            stopped.append("layer")  # channels-redis unsubscribes the socket's channel here
            raise

    async def handle(message):
        raise ValueError("no handler")

    consumer = asyncio.create_task(dispatch_each([socket.get, read_layer], handle))
    socket.put_nowait({"type": "nonsense"})

    with pytest.raises(ValueError, match="no handler"):
        await asyncio.wait_for(consumer, 5)
    assert stopped == ["layer"]
