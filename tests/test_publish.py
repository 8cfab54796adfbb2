"""Frames on Redis: kept in their stream's record and published in one pipeline that many streams share."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
import redis.exceptions

from streaming.deployment.batching import PipelineBatcher
from streaming.deployment.publish import frame_event, publish_event, publish_kept
from streaming.deployment.redis_layer import RedisLayer
from streaming.deployment.shared import Entry, RedisState, record_key
from streaming.errors import StoreUnavailable

pytestmark = pytest.mark.redis


@pytest.fixture
async def state(redis_url: str) -> AsyncIterator[RedisState]:
    state = RedisState(redis_url, replay_ttl=60, presence_ttl=5, worker_ttl=5, stream_ttl=600)
    yield state
    await state.aclose()


def first_delta(stream: str) -> tuple[Entry, dict]:
    """A stream's first delta: its entry in the record, and the message that carries it to the sockets."""
    entry = Entry(pos=1, seq=1, end=False, frame='{"text":"Hel"}')
    return entry, frame_event("delta", stream, entry.frame, pos=1, seq=1)


async def sockets_of(layer: RedisLayer, group: str, count: int = 1) -> list[str]:
    """`count` sockets' channels, each in `group`."""
    sockets = [await layer.new_channel() for _ in range(count)]
    for socket in sockets:
        await layer.group_add(group, socket)
    return sockets


async def test_a_frame_is_kept_in_its_record_and_reaches_every_socket_of_the_group(state, redis_url):
    layer = RedisLayer(hosts=[redis_url])
    sockets = await sockets_of(layer, "client.alice", 2)
    stream = str(uuid.uuid4())
    entry, event = first_delta(stream)

    whole = await publish_kept(shared=state, layer=layer, group="client.alice", stream=stream, entry=entry, event=event)

    assert whole is True
    for socket in sockets:
        assert await asyncio.wait_for(layer.receive(socket), timeout=5) == event
    assert (await state.entries_after(stream, 0)).entries == [entry]
    assert 600 < await state.redis.ttl(record_key(stream)) <= 660  # the longest stream, then the replay time
    # The one name the app copies from channels-redis: the channel the layer itself subscribes a group's members to.
    assert layer.group_channel("client.alice") == layer._get_layer()._get_group_channel_name("client.alice")
    await layer.flush()


async def test_a_busy_notice_reaches_the_sockets_just_before_its_delta_in_the_same_round_trip(
    state, redis_url, monkeypatch
):
    layer = RedisLayer(hosts=[redis_url])
    [socket] = await sockets_of(layer, "client.carol")
    stream = str(uuid.uuid4())
    entry, event = first_delta(stream)
    busy = frame_event("busy", stream, '{"type":"busy"}')
    pipelines = []
    execute = PipelineBatcher.execute

    async def counted(batcher, *commands):
        pipelines.append([command[0] for command in commands])
        return await execute(batcher, *commands)

    monkeypatch.setattr(PipelineBatcher, "execute", counted)
    await publish_kept(
        shared=state, layer=layer, group="client.carol", stream=stream, entry=entry, event=event, before=busy
    )

    assert pipelines == [["RPUSH", "EXPIRE", "PUBLISH", "PUBLISH"]]  # the busy did not wait for a round trip alone
    assert await asyncio.wait_for(layer.receive(socket), timeout=5) == busy
    assert await asyncio.wait_for(layer.receive(socket), timeout=5) == event
    assert (await state.entries_after(stream, 0)).entries == [entry]  # not kept: a busy is not replayed
    await layer.flush()


async def test_a_frame_kept_once_the_start_is_in_line_need_not_wait_for_its_round_trip_and_comes_after_it(
    state, redis_url, monkeypatch
):
    layer = RedisLayer(hosts=[redis_url])
    [socket] = await sockets_of(layer, "client.dave")
    stream = str(uuid.uuid4())
    start = frame_event("start", stream, '{"type":"start"}')
    entry, delta = first_delta(stream)
    sent, send = [], PipelineBatcher._send

    async def counted(batcher):
        sent.append(len(batcher._queued))
        await send(batcher)

    monkeypatch.setattr(PipelineBatcher, "_send", counted)
    keeping: list[asyncio.Task] = []

    def in_line() -> None:  # as a stream's first delta is let through (`Generation._announce`)
        assert sent == []  # the start has not even left
        keeping.append(
            asyncio.create_task(
                publish_kept(shared=state, layer=layer, group="client.dave", stream=stream, entry=entry, event=delta)
            )
        )

    await publish_event(shared=state, layer=layer, group="client.dave", event=start, queued=in_line)
    assert await keeping[0] is True

    assert await asyncio.wait_for(layer.receive(socket), timeout=5) == start
    assert await asyncio.wait_for(layer.receive(socket), timeout=5) == delta
    await layer.flush()


async def test_a_layer_on_another_redis_than_the_records_gets_its_frames_through_its_own_api(state, redis_url):
    other_database = redis_url.rpartition("/")[0] + "/3"  # another name for the server: the app cannot know it is one
    layer = RedisLayer(hosts=[other_database])
    socket = await layer.new_channel()
    await layer.group_add("client.bob", socket)
    stream = str(uuid.uuid4())
    entry = Entry(pos=1, seq=1, end=False, frame='{"text":"Hi"}')
    event = frame_event("delta", stream, entry.frame, pos=1, seq=1)

    assert not layer.publishes_on(state.url)
    await publish_kept(shared=state, layer=layer, group="client.bob", stream=stream, entry=entry, event=event)

    assert await asyncio.wait_for(layer.receive(socket), timeout=5) == event
    assert (await state.entries_after(stream, 0)).entries == [entry]
    await layer.flush()


async def test_concurrent_streams_share_pipelines_and_each_keeps_its_order(state, monkeypatch):
    batcher = PipelineBatcher(state.redis)
    pipelines = 0
    round_trip = batcher._round_trip

    async def counting_round_trip(commands):
        nonlocal pipelines
        pipelines += 1
        return await round_trip(commands)

    monkeypatch.setattr(batcher, "_round_trip", counting_round_trip)
    keys = [f"test:batch:{uuid.uuid4()}" for _ in range(20)]

    async def one_stream(key: str) -> None:
        for seq in range(10):
            await batcher.execute(("RPUSH", key, seq), ("EXPIRE", key, 60))

    await asyncio.gather(*(one_stream(key) for key in keys))

    for key in keys:
        assert await state.redis.lrange(key, 0, -1) == [str(seq).encode() for seq in range(10)]
    assert pipelines <= 11  # 200 calls: one pipeline per round of the 20 streams, and the first call's own


async def test_a_failed_command_fails_its_caller_only(state):
    batcher = PipelineBatcher(state.redis)
    text_key, list_key = f"test:text:{uuid.uuid4()}", f"test:list:{uuid.uuid4()}"
    await state.redis.set(text_key, "not a list")

    failing = batcher.execute(("RPUSH", text_key, "x"))
    fine = batcher.execute(("RPUSH", list_key, "x"))
    results = await asyncio.gather(failing, fine, return_exceptions=True)

    assert isinstance(results[0], redis.exceptions.ResponseError)
    assert results[1] == [1]  # each caller gets its own replies
    assert await state.redis.lrange(list_key, 0, -1) == [b"x"]
    await batcher.execute(("RPUSH", list_key, "y"))  # and the batcher goes on
    assert await state.redis.llen(list_key) == 2


async def test_a_connection_redis_closed_between_batches_is_replaced_without_failing_anyone(state):
    batcher = PipelineBatcher(redis.asyncio.Redis.from_url(state.url))
    key = f"test:killed:{uuid.uuid4()}"
    [connection_id] = await batcher.execute(("CLIENT", "ID"))
    assert await batcher.execute(("RPUSH", key, "a")) == [1]

    assert await state.redis.execute_command("CLIENT", "KILL", "ID", connection_id) == 1
    assert await batcher.execute(("RPUSH", key, "b"), ("LRANGE", key, 0, -1)) == [2, [b"a", b"b"]]
    assert await batcher.execute(("CLIENT", "ID")) != [connection_id]
    await batcher.aclose()


async def test_a_batch_that_timed_out_leaves_no_reply_for_the_next_one(state):
    batcher = PipelineBatcher(redis.asyncio.Redis.from_url(state.url), timeout=0.2)
    key = f"test:timed-out:{uuid.uuid4()}"
    with pytest.raises(TimeoutError):
        await batcher.execute(("BLPOP", key, 2))  # answered only once the key has an item

    await state.redis.rpush(key, "late")  # a reply to that BLPOP, if its connection were still in use
    # 2, or 1 if Redis served the BLPOP before it saw its connection close: either way this batch's own reply.
    assert await batcher.execute(("RPUSH", key, "next")) in ([1], [2])
    await batcher.aclose()


async def test_a_broken_connection_fails_every_caller_of_the_batch_as_the_store_unavailable():
    state = RedisState("redis://127.0.0.1:1/0", replay_ttl=60, presence_ttl=5, worker_ttl=5, stream_ttl=600)
    entry = Entry(pos=1, seq=1, end=False, frame="{}")
    results = await asyncio.gather(
        *(state.keep_and_publish(str(uuid.uuid4()), entry, channel="c", message=b"m") for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(result, StoreUnavailable) for result in results)
    assert all(isinstance(result.__cause__, redis.exceptions.ConnectionError) for result in results)


async def test_a_redis_that_stops_answering_fails_the_batch_after_the_timeout():
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # reads the commands, never answers

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=None)
    batcher = PipelineBatcher(client, timeout=0.2)

    with pytest.raises(TimeoutError):
        await batcher.execute(("PUBLISH", "c", "m"))

    await batcher.aclose()
    server.close()
