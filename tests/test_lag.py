"""Overload: how a worker knows it is behind, and how its streams tell their clients."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from streaming.lag import LoopLag, loop_lag
from tests.conftest import new_session, open_socket, prompt, texts
from tests.fake_openai import Script


def test_busy_from_the_threshold_until_the_lag_falls_below_half_of_it():
    lag = LoopLag()
    states = []
    for lag_ms in (10, 250, 200, 130, 124, 60):
        lag.observe(lag_ms, threshold_ms=250)
        states.append(lag.busy)
    assert states == [False, True, True, True, False, False]
    assert lag.lag_ms == 60


@pytest.mark.django_db(transaction=True)
async def test_a_stream_on_an_overloaded_worker_says_so_once_and_loses_nothing(upstream, settings):
    settings.STREAMING_BUSY_MS = 0  # every measurement now finds the worker overloaded
    upstream.then(Script(tokens=["Slow", " but", " whole", "."]))
    socket = await open_socket(session_key=await database_sync_to_async(new_session)())
    loop_lag.observe(300, threshold_ms=settings.STREAMING_BUSY_MS)

    await socket.send(prompt("Hi"))
    start, *frames = await socket.stream_to_end()

    busy = [frame for frame in frames if frame["type"] == "busy"]
    assert frames[0]["type"] == "busy" and len(busy) == 1
    assert busy[0]["stream"] == start["stream"] and isinstance(busy[0]["lag_ms"], int) and busy[0]["message"]
    deltas, done = frames[1:-1], frames[-1]
    assert texts(deltas) == "Slow but whole." and done["type"] == "done" and done["seq"] == len(deltas)
    await socket.close()
