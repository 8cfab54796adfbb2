"""Overload: how the server knows a stream runs late, and how it tells the client."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from streaming import protocol
from streaming.deployment.lag import LoopLag, loop_lag
from tests.conftest import group_of_session, layer_event, new_session, open_socket, prompt, texts
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


@pytest.mark.django_db(transaction=True)
async def test_a_socket_whose_deltas_arrive_late_is_told_once_per_stream(settings):
    settings.STREAMING_BUSY_MS = 250
    session = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session)
    group, layer, stream = group_of_session(session), get_channel_layer(), str(uuid.uuid4())

    def delta(seq: int, *, late_by: float = 0) -> dict:
        event = layer_event({"type": "delta", "stream": stream, "seq": seq, "text": str(seq)})
        return {**event, "sent": event["sent"] - late_by}

    await layer.group_send(group, layer_event({"type": "start", "stream": stream}))
    await layer.group_send(group, delta(1))
    await layer.group_send(group, {key: value for key, value in delta(2).items() if key != "sent"})  # older worker
    await layer.group_send(group, delta(3, late_by=1))
    await layer.group_send(group, delta(4, late_by=1))
    await layer.group_send(group, layer_event(protocol.busy_frame(stream=stream, lag_ms=300)))  # told already

    frames = [await socket.receive() for _ in range(6)]
    assert [frame["type"] for frame in frames] == ["start", "delta", "delta", "busy", "delta", "delta"]
    assert frames[3]["stream"] == stream and frames[3]["lag_ms"] >= 1000
    assert [frame["seq"] for frame in frames if frame["type"] == "delta"] == [1, 2, 3, 4]
    assert await socket.nothing_received()
    await socket.close()
