"""Overload: how the server knows a stream runs late, how it tells the client, and how the streams under way give
way to new prompts."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from streaming import protocol
from streaming.deployment import metrics
from streaming.deployment.collector import collector
from streaming.deployment.lag import LoopLag, give_way, loop_lag
from streaming.provider.upstream import stream_pieces
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


def test_late_from_five_milliseconds_of_lag_twice_in_a_row():
    lag = LoopLag()
    states = []
    for lag_ms in (0.4, 4.9, 5, 0.3, 30, 5, 12, 4, 6):
        lag.observe(lag_ms, threshold_ms=250)
        states.append(lag.late)
    assert states == [False, False, False, False, False, True, True, False, False]  # a lone pause is not lateness


def test_a_stream_gives_way_for_ten_turns_of_the_loop_as_late_as_it_runs_at_most_the_setting():
    lag = LoopLag()
    waits = []
    for lag_ms in (40, 6, 6, 12, 40, 1):
        lag.observe(lag_ms, threshold_ms=250)
        waits.append(lag.give_way_ms(most_ms=250))
    assert waits == [0, 60, 60, 120, 250, 0]  # late from the second measurement
    assert lag.give_way_ms(most_ms=0) == 0


def test_while_new_prompts_await_their_first_words_the_streams_under_way_give_way_four_times_as_long():
    lag = LoopLag()
    for lag_ms in (12, 12):
        lag.observe(lag_ms, threshold_ms=250)
    alone = lag.give_way_ms(most_ms=250)
    lag.prompts_coming = 3
    assert (alone, lag.give_way_ms(most_ms=250), lag.give_way_ms(most_ms=100)) == (120, 480, 400)
    lag.observe(1, threshold_ms=250)
    assert lag.give_way_ms(most_ms=250) == 0  # a loop on time holds nothing back, whatever waits


@pytest.mark.django_db(transaction=True)
async def test_the_worker_counts_the_prompts_awaiting_their_first_words_at_each_measurement(upstream, monkeypatch):
    script = Script(tokens=["First", " words"], pause_after=0)  # the response's head, then nothing until told
    upstream.then(script)
    measured = asyncio.Event()
    monkeypatch.setattr(metrics, "record_lag", lambda lag_ms: measured.set())  # the measurement's last step
    socket = await open_socket(session_key=await database_sync_to_async(new_session)())

    await socket.send(prompt("Hi"))
    await script.paused.wait()
    measured.clear()
    await measured.wait()
    coming_before = loop_lag.prompts_coming
    script.proceed.set()
    await socket.receive_until("delta")
    measured.clear()
    await measured.wait()

    assert (coming_before, loop_lag.prompts_coming) == (1, 0)
    await socket.stream_to_end()
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_the_worker_holds_the_garbage_collector_while_a_prompt_awaits_its_first_words_on_a_late_loop(
    upstream, settings, monkeypatch
):
    settings.STREAMING_BUSY_MS, settings.STREAMING_LATE_READ_MS = 10**9, 0  # neither `busy` frames nor giving way
    script = Script(tokens=["First", " words"], pause_after=0)
    upstream.then(script)
    measured = asyncio.Event()
    monkeypatch.setattr(metrics, "record_lag", lambda lag_ms: measured.set())
    switches: list[bool] = []  # what the worker did to the collector, in order (the test process's own is left on)
    monkeypatch.setattr(collector, "_disable", lambda: switches.append(False))
    monkeypatch.setattr(collector, "_enable", lambda: switches.append(True))
    for _ in range(2):  # late, and it stays so: the worker's own measurements are not taken
        loop_lag.observe(60_000, threshold_ms=settings.STREAMING_BUSY_MS)
    monkeypatch.setattr(loop_lag, "observe", lambda lag_ms, *, threshold_ms: None)
    socket = await open_socket(session_key=await database_sync_to_async(new_session)())

    await socket.send(prompt("Hi"))
    await script.paused.wait()
    measured.clear()
    await measured.wait()
    held_while_it_waits = switches == [False]
    script.proceed.set()
    await socket.receive_until("delta")
    measured.clear()
    await measured.wait()

    assert held_while_it_waits and switches == [False, True]
    await socket.stream_to_end()
    await socket.close()


async def _held(settings, *, late: bool, pause_ms: int) -> tuple[bool, bool]:
    """Whether `give_way` is still waiting after the loop has turned a few times, and whether it is in the response's
    hold meanwhile."""
    settings.STREAMING_LATE_READ_MS = pause_ms
    for _ in range(2):
        loop_lag.observe(50 if late else 0, threshold_ms=settings.STREAMING_BUSY_MS)
    holding = False

    @contextlib.contextmanager
    def hold():
        nonlocal holding
        holding = True
        try:
            yield
        finally:
            holding = False

    waiting = asyncio.create_task(give_way(hold))
    for _ in range(5):
        await asyncio.sleep(0)
    held, held_in_hold = not waiting.done(), holding
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert not holding  # let go, however the wait ends
    return held, held_in_hold


async def test_a_stream_gives_way_only_while_the_loop_is_late_and_holds_its_response_while_it_does(settings):
    try:
        assert await _held(settings, late=True, pause_ms=60_000) == (True, True)
        assert await _held(settings, late=False, pause_ms=60_000) == (False, False)
        assert await _held(settings, late=True, pause_ms=0) == (False, False)  # turned off
    finally:
        loop_lag.reset()


@pytest.mark.django_db
async def test_the_reader_gives_way_only_once_the_answer_has_shown_its_first_words(upstream):
    script = Script(tokens=["", "first", " second"], pause_after=1)  # an empty chunk, then a pause: no words yet
    upstream.then(script)
    texts_read: list[str] = []
    gave_way_after: list[int] = []

    async def between_reads(hold) -> None:
        gave_way_after.append(len(texts_read))
        with hold():  # the response's socket is read again after it
            await asyncio.sleep(0)

    async def write_the_rest() -> None:
        await script.paused.wait()  # everything before the pause is written
        for _ in range(5):  # (the reader's turn to take those bytes, so that the rest comes in a read of its own)
            await asyncio.sleep(0)
        script.proceed.set()

    writer = asyncio.create_task(write_the_rest())
    pieces = stream_pieces(
        model="fake-model", messages=[{"role": "user", "content": "Hi"}], between_reads=between_reads
    )
    async with asyncio.timeout(5):
        async for piece in pieces:
            if piece.text:
                texts_read.append(piece.text)
    await writer
    assert "".join(texts_read) == "first second"
    assert all(count >= 1 for count in gave_way_after)  # never before the first words


@pytest.mark.django_db(transaction=True)
async def test_while_the_worker_runs_late_a_new_prompt_goes_ahead_of_a_stream_under_way(
    upstream, settings, monkeypatch
):
    """The stream under way has more to read, but holds its next read while the loop is late: the new prompt's
    first words come before it. Cancelled, it ends with what it had relayed."""
    settings.STREAMING_BUSY_MS = 10**9  # no `busy` frames in between
    settings.STREAMING_LATE_READ_MS = 60_000
    under_way = Script(tokens=["Under", " way", "."], pause_after=1)
    # The new answer waits after its first words too, so that it is still running when it is cancelled: otherwise
    # it may be read to its end in one read, and its cancel find it ended.
    upstream.then(under_way, Script(tokens=["New", " words"], pause_after=1))
    socket = await open_socket(session_key=await database_sync_to_async(new_session)())
    for _ in range(2):  # a minute late, and it stays so: the worker's own measurements are not taken
        loop_lag.observe(60_000, threshold_ms=settings.STREAMING_BUSY_MS)
    monkeypatch.setattr(loop_lag, "observe", lambda lag_ms, *, threshold_ms: None)

    await socket.send(prompt("First", request="r1"))
    first_start, first_delta = await socket.receive_until("delta")
    under_way.proceed.set()  # the rest of the first answer is written now, and waits
    await socket.send(prompt("Second", request="r2"))
    second_start = await socket.receive()
    second_delta = await socket.receive()

    assert first_delta["text"] == "Under" and second_start["type"] == "start"
    assert second_delta["type"] == "delta" and second_delta["stream"] == second_start["stream"]
    assert second_delta["text"].startswith("New")
    await socket.send({"type": "cancel", "stream": first_start["stream"]})
    await socket.send({"type": "cancel", "stream": second_start["stream"]})
    ends = {}
    while len(ends) < 2:
        frame = await socket.receive()
        if frame["type"] in ("done", "error"):
            ends[frame["stream"]] = frame
    first_end = ends[first_start["stream"]]
    assert first_end["finish_reason"] == "cancelled" and first_end["seq"] == 1
    await socket.close()
