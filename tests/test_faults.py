"""Faults in one process, against real parts: a provider that cuts, fails or leaks its key, a Redis that stops
answering or loses its lists, a database that refuses the end of a stream. After each, the row says what happened,
its answer is what was relayed, and every socket that followed the stream receives its end."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import OperationalError, connection

from streaming import services
from streaming.deployment import running
from streaming.deployment.shared import MemoryState, RedisState, get_shared, record_key
from streaming.deployment.worker import sweep_dead_workers, worker
from streaming.errors import Interrupted, StoreUnavailable
from streaming.models import Conversation, Exchange
from streaming.relay.ending import Ending
from streaming.relay.transcript import Transcript
from tests.conftest import new_session, open_socket, prompt, texts
from tests.fake_openai import Script

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = [f" w{i}" for i in range(12)]
KEY = "sk-test-secret-key"  # the key the `upstream` fixture configures


async def row_of(stream: str) -> Exchange:
    return await Exchange.objects.aget(id=stream)


async def test_the_api_key_in_a_providers_401_body_reaches_no_log_record(upstream, caplog):
    caplog.set_level(logging.DEBUG)
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}}
    upstream.then(Script(status=401, error_body=body))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()
    await running.streams_finished()

    assert frames[-1]["code"] == "upstream_error" and KEY not in str(frames)
    formatter = logging.Formatter()
    logged = [formatter.format(record) for record in caplog.records]
    assert any("AuthenticationError" in line for line in logged)  # the failure is logged, by its type
    assert not [line for line in logged if KEY in line]
    await socket.close()


async def test_a_body_that_ends_without_finish_or_done_is_a_truncated_answer(upstream):
    upstream.then(Script(tokens=TOKENS, end_after=5))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "upstream_unavailable"
    assert frames[-1]["retryable"] is True and "cut off" in frames[-1]["message"]
    row = await row_of(frames[0]["stream"])
    assert (row.status, row.error_code, row.answer) == ("failed", "upstream_unavailable", "".join(TOKENS[:5]))
    await socket.close()


@pytest.mark.parametrize(
    ("event", "code", "retryable"),
    [
        ({"message": "Bad gateway", "code": 502}, "upstream_unavailable", True),
        ({"message": "Overloaded", "code": "503"}, "upstream_unavailable", True),
        ({"message": "Internal", "type": "server_error", "code": None}, "upstream_unavailable", True),
        ({"message": "Refused", "type": "invalid_request_error", "code": "invalid_value"}, "upstream_error", False),
    ],
)
async def test_a_mid_stream_error_event_is_told_by_whose_fault_it_is(upstream, event, code, retryable):
    upstream.then(Script(tokens=TOKENS[:3], error_event=event))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert (frames[-1]["code"], frames[-1]["retryable"]) == (code, retryable)
    assert texts(frames) == "".join(TOKENS[:3]) == (await row_of(frames[0]["stream"])).answer
    await socket.close()


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A server that takes Redis commands and never answers: a Redis that hangs."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    server.close()


async def test_a_redis_that_stops_answering_ends_the_stream_as_internal_error_not_time_limit(
    upstream, settings, silent_redis, caplog
):
    settings.STREAMING_REDIS_OPTIONS = {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}
    settings.STREAMING_REDIS_URL = silent_redis
    upstream.then(Script(tokens=TOKENS))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert frames[-1]["code"] == "internal_error" and frames[-1]["retryable"] is True
    await running.streams_finished()
    row = await row_of(frames[0]["stream"])
    assert (row.status, row.error_code) == ("failed", "internal_error")
    assert any("Redis failed" in record.getMessage() for record in caplog.records)
    await socket.close()


async def test_a_record_that_redis_lost_mid_stream_is_written_again_and_replays_the_right_text(
    upstream, settings, redis_url
):
    settings.STREAMING_REDIS_URL = redis_url
    store = redis.Redis.from_url(redis_url)
    upstream.then(Script(tokens=TOKENS, hang_after=8, interval=0.02))
    session = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session)
    await socket.send(prompt())
    start = await socket.receive()
    deltas = [await socket.receive()]

    store.flushdb()  # what a Redis restart without persistence does to every list
    while texts(deltas) != "".join(TOKENS[:8]):
        deltas.append(await socket.receive())

    other = await open_socket(session_key=session)  # while the stream runs, its record serves the replay
    await other.send({"type": "resume", "stream": start["stream"], "after": 1})
    replayed = [await other.receive() for _ in deltas[1:]]
    assert replayed == deltas[1:] and store.ttl(record_key(start["stream"])) > 0
    await socket.send({"type": "cancel", "stream": start["stream"]})
    assert (await other.receive())["type"] == "done"
    await socket.close()
    await other.close()


async def test_a_database_that_refuses_the_end_of_a_stream_still_ends_it_and_saves_it_later(upstream, caplog):
    refusals = 2

    def refuse_exchange_updates(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal refusals
        if sql.startswith('UPDATE "streaming_exchange"') and refusals:
            refusals -= 1
            raise OperationalError("the database went away")
        return execute(sql, params, many, context)

    upstream.then(Script(tokens=TOKENS))
    socket = await open_socket()
    await database_sync_to_async(lambda: connection.execute_wrappers.append(refuse_exchange_updates))()
    try:
        await socket.send(prompt())
        frames = await socket.stream_to_end()
        await running.streams_finished()
    finally:
        await database_sync_to_async(lambda: connection.execute_wrappers.remove(refuse_exchange_updates))()

    assert frames[-1]["type"] == "done" and texts(frames) == "".join(TOKENS)
    row = await row_of(frames[0]["stream"])
    assert (row.status, row.answer) == ("completed", "".join(TOKENS)) and refusals == 0
    assert any("could not be saved" in record.getMessage() for record in caplog.records)
    await socket.close()


async def test_the_in_memory_state_forgets_clients_and_workers_once_they_expire(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("streaming.deployment.shared.time.monotonic", lambda: now[0])
    state = MemoryState(replay_ttl=1, presence_ttl=5, worker_ttl=5, stream_ttl=1)
    await state.mark_present([f"socket:{n}" for n in range(100)])
    await state.heartbeat("gone")

    now[0] += 60
    await state.mark_present(["session:still-here"])

    assert state._present.keys() == {"session:still-here"} and not state._workers


@pytest.mark.redis
async def test_after_a_redis_restart_a_live_worker_is_not_taken_for_dead_but_a_dead_one_still_is(
    own_redis, settings, monkeypatch
):
    settings.STREAMING_REDIS_URL = own_redis.url
    settings.STREAMING_WORKER_TIMEOUT = 3
    conversation = await Conversation.objects.acreate(client="session:x", title="t")
    row = await Exchange.objects.acreate(
        conversation=conversation, client="session:x", request="r", model="m", prompt="p", worker="live-worker"
    )
    shared, missing = get_shared(), {}

    async def sweep() -> int:
        return await sweep_dead_workers(
            layer=get_channel_layer(), worker=worker.id, started=worker.started, missing=missing
        )

    await shared.heartbeat("live-worker")
    own_redis.kill()
    own_redis.start()  # every heartbeat is gone, the live worker's too

    try:
        swept = await sweep()
    except StoreUnavailable:  # the pooled connection was closed by the restart: the next command reconnects
        swept = await sweep()
    assert swept == 0  # taken for dead here before the fix: its clients were told `interrupted`
    await shared.heartbeat("live-worker")  # its next beat, well within the timeout
    assert await sweep() == 0
    await row.arefresh_from_db()
    assert row.status == Exchange.Status.STREAMING

    await Exchange.objects.filter(id=row.id).aupdate(worker="dead-worker")
    assert await sweep() == 0  # missing since now
    later = time.monotonic() + settings.STREAMING_WORKER_TIMEOUT
    monkeypatch.setattr("streaming.deployment.worker.time.monotonic", lambda: later)
    assert await sweep() == 1
    await row.arefresh_from_db()
    assert row.status == Exchange.Status.INTERRUPTED


async def test_a_stream_that_was_swept_keeps_the_end_its_clients_were_told():
    conversation = await Conversation.objects.acreate(client="session:x", title="t")
    row = await Exchange.objects.acreate(
        conversation=conversation, client="session:x", request="r", model="m", prompt="p"
    )
    error = Interrupted()
    half = Transcript()
    half.add("delta", "", "half")
    assert await database_sync_to_async(services.exchange_interrupt)(exchange_id=row.id, transcript=half, error=error)

    completed = Ending.of(error=None, finish_reason="stop", last_seq=2, duration_ms=10)
    whole = Transcript()
    for text in ["half", " and more"]:
        whole.add("delta", "", text)
    saved = await database_sync_to_async(services.exchange_finish)(
        exchange_id=row.id, ending=completed, transcript=whole
    )

    await row.arefresh_from_db()
    assert saved is False and (row.status, row.answer) == ("interrupted", "half")


@pytest.mark.redis
async def test_presence_and_heartbeats_in_redis_keep_a_ttl_under_a_second(redis_url):
    # Presence is marked three times a period; a period under a second was cut to a TTL of 0, which Redis refuses,
    # so no socket counted as open and its streams were stopped as unwatched.
    state = RedisState(redis_url, replay_ttl=60, presence_ttl=0.3, worker_ttl=0.6, stream_ttl=60)
    try:
        await state.mark_present(["session:brief"])
        await state.heartbeat("brief-worker")
        assert await state.is_present("session:brief")
        assert await state.live_workers(["brief-worker"]) == {"brief-worker"}
    finally:
        await state.aclose()
