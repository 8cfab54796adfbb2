"""Resuming streams, filling gaps, and streams that outlive their worker or their watchers (one process)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import HttpCommunicator, WebsocketCommunicator

from chatproject.asgi import application
from streaming import protocol
from streaming.clients import client_of
from streaming.deployment import running
from streaming.deployment.shared import Entry, get_shared
from streaming.deployment.worker import sweep_dead_workers, worker
from streaming.models import Conversation, Exchange
from tests.conftest import ORIGIN, dumps, group_of_session, layer_event, new_session, open_socket, prompt, texts
from tests.fake_openai import Script

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = [f" w{i}" for i in range(30)]


async def test_a_client_that_lost_its_socket_resumes_with_every_seq_exactly_once(upstream):
    upstream.then(Script(tokens=TOKENS, interval=0.005))
    session = await database_sync_to_async(new_session)()
    first = await open_socket(session_key=session)
    await first.send(prompt())
    start = await first.receive()
    received = [await first.receive() for _ in range(3)]
    await first.close()

    second = await open_socket(session_key=session)
    await second.send({"type": "resume", "stream": start["stream"], "after": received[-1]["seq"]})
    rest = await second.stream_to_end()

    seqs = [f["seq"] for f in received + rest if f["type"] == "delta"]
    assert seqs == list(range(1, len(seqs) + 1))
    assert rest[-1]["type"] == "done" and rest[-1]["seq"] == seqs[-1]
    row = await Exchange.objects.aget(id=start["stream"])
    assert texts(received + rest) == row.answer == "".join(TOKENS)
    await second.close()


async def test_resume_of_an_ended_stream_replays_from_the_log_once_the_record_is_gone(upstream, settings):
    upstream.then(Script(tokens=TOKENS, interval=0.002))
    socket = await open_socket()
    await socket.send(prompt())
    frames = await socket.stream_to_end()
    stream, done = frames[0]["stream"], frames[-1]
    settings.STREAMING_REPLAY_SECONDS = 601  # a fresh, empty record: as after its TTL

    deltas = [f for f in frames if f["type"] == "delta"]
    after = len(deltas) // 2

    await socket.send({"type": "resume", "stream": stream, "after": after})
    replayed = await socket.receive_until("done")

    assert len(deltas) >= 2
    originals = deltas[after:]
    assert replayed[:-1] == originals
    assert replayed[-1] == done
    await socket.close()


async def test_resume_after_the_last_delta_is_refused(upstream):
    upstream.then(Script(tokens=TOKENS, hang_after=2))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await socket.receive_text("".join(TOKENS[:2]))

    await socket.send({"type": "resume", "stream": start["stream"], "after": 50, "request": "catch-up"})

    error = await socket.receive()
    assert error["code"] == "bad_request" and error["request"] == "catch-up" and "stream" not in error
    await socket.send({"type": "cancel", "stream": start["stream"]})
    assert (await socket.receive())["finish_reason"] == "cancelled"
    await socket.close()


async def test_resume_of_a_stream_that_is_not_the_clients_is_not_found(upstream):
    owner, other = await open_socket(), await open_socket()
    await owner.send(prompt())
    stream = (await owner.stream_to_end())[0]["stream"]
    for target in (stream, str(uuid.uuid4())):
        await other.send({"type": "resume", "stream": target, "after": 0})
        assert (await other.receive())["code"] == "not_found"
    assert await other.nothing_received()
    await owner.close()
    await other.close()


async def test_a_gap_is_filled_from_the_record_and_a_duplicate_dropped():
    session = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session)
    group = group_of_session(session)
    layer, shared, stream = get_channel_layer(), get_shared(), str(uuid.uuid4())
    deltas = [{"type": "delta", "stream": stream, "seq": seq, "text": text} for seq, text in enumerate("abc", start=1)]
    for delta in deltas:
        await shared.keep(stream, Entry(pos=delta["seq"], seq=delta["seq"], end=False, frame=dumps(delta)))
    unfollowed = {"type": "delta", "stream": str(uuid.uuid4()), "seq": 1, "text": "not for this socket"}

    await layer.group_send(group, layer_event(unfollowed))  # no start seen, not resumed: not sent
    await layer.group_send(group, layer_event({"type": "start", "stream": stream}))
    await layer.group_send(group, layer_event(deltas[0]))
    await layer.group_send(group, layer_event(deltas[2]))  # 2 was lost
    await layer.group_send(group, layer_event(deltas[2]))  # a duplicate

    frames = [await socket.receive() for _ in range(4)]
    assert frames[0] == {"type": "start", "stream": stream}
    assert [(f["seq"], f["text"]) for f in frames[1:]] == [(1, "a"), (2, "b"), (3, "c")]
    assert await socket.nothing_received()
    await socket.close()


async def test_a_stream_nobody_watches_is_stopped_after_the_grace_period(upstream, settings):
    settings.STREAMING_DETACHED_SECONDS = 0
    settings.STREAMING_PRESENCE_SECONDS = 0.3
    upstream.then(Script(tokens=TOKENS, hang_after=2))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await socket.receive()
    await socket.close()

    await running.streams_finished()

    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.error_code) == ("interrupted", "interrupted")
    assert row.answer == "".join(TOKENS[:2])
    await asyncio.wait_for(upstream.requests[0].closed.wait(), timeout=1)


async def sweep(started: datetime) -> int:
    return await sweep_dead_workers(layer=get_channel_layer(), worker=worker.id, started=started)


async def test_a_dead_workers_stream_is_logged_with_its_reasoning_and_tool_calls_from_its_record():
    conversation = await Conversation.objects.acreate(client="session:swept", title="t")
    row = await Exchange.objects.acreate(
        conversation=conversation, client="session:swept", request="r", model="m", prompt="p", worker="dead-worker-2"
    )
    await Exchange.objects.filter(id=row.id).aupdate(created=worker.started - timedelta(minutes=1))
    stream = str(row.id)
    frames = [
        protocol.reasoning_frame(stream=stream, pos=1, text="Look it up."),
        protocol.delta_frame(stream=stream, pos=2, seq=1, text="Checking."),
        protocol.tool_call_frame(stream=stream, pos=3, call="c1", name="current_time"),
        protocol.tool_arguments_frame(stream=stream, pos=4, call="c1", text="{}"),
        protocol.tool_running_frame(stream=stream, pos=5, call="c1"),
        protocol.tool_result_frame(stream=stream, pos=6, call="c1", result="noon", error=None, duration_ms=4),
        protocol.tool_call_frame(stream=stream, pos=7, call="c2", name="search_history"),
        protocol.tool_arguments_frame(stream=stream, pos=8, call="c2", text='{"query": "te'),
    ]
    for entry in frames:
        seq = entry.get("seq", 0)
        await get_shared().keep(stream, Entry(pos=entry["pos"], seq=seq, end=False, frame=protocol.encode(entry)))

    assert await sweep(worker.started) == 1

    await row.arefresh_from_db()
    assert (row.status, row.answer, row.reasoning) == ("interrupted", "Checking.", "Look it up.")
    calls = [(c.round, c.call_id, c.name, c.arguments, c.status, c.result) async for c in row.tool_calls.all()]
    assert calls == [
        (1, "c1", "current_time", "{}", "done", "noon"),
        (2, "c2", "search_history", '{"query": "te', "stopped", ""),
    ]


async def test_the_streams_of_a_dead_worker_end_interrupted_and_their_client_is_told():
    session = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session)
    client_key = client_of({"session": SimpleNamespace(session_key=session)}).key
    conversation = await Conversation.objects.acreate(client=client_key, title="t")
    row = await Exchange.objects.acreate(
        conversation=conversation, client=client_key, request="r", model="m", prompt="p", worker="dead-worker-1"
    )
    # Started before this process: without Redis, only then is it known to be a dead predecessor's stream.
    await Exchange.objects.filter(id=row.id).aupdate(created=worker.started - timedelta(minutes=1))
    for seq, text in enumerate(["half ", "an answer"], start=1):
        frame = dumps({"type": "delta", "stream": str(row.id), "seq": seq, "text": text})
        await get_shared().keep(str(row.id), Entry(pos=seq, seq=seq, end=False, frame=frame))
    await socket.send({"type": "resume", "stream": str(row.id), "after": 2})  # the socket follows the stream

    assert await sweep(worker.started) == 1

    error = await socket.receive()
    assert error["type"] == "error" and error["code"] == "interrupted" and error["stream"] == str(row.id)
    await row.arefresh_from_db()
    assert (row.status, row.answer, row.last_seq, row.layout) == ("interrupted", "half an answer", 2, [5, 14])
    assert await sweep(worker.started) == 0
    await socket.close()


async def test_without_redis_a_stream_another_live_worker_started_is_left_alone_and_the_error_logged(caplog):
    other = f"other-live-worker-{uuid.uuid4().hex[:8]}"  # a worker is reported once per process: one of its own
    conversation = await Conversation.objects.acreate(client="session:x", title="t")
    row = await Exchange.objects.acreate(
        conversation=conversation, client="session:x", request="r", model="m", prompt="p", worker=other
    )

    assert await sweep(worker.started) == 0
    assert await sweep(worker.started) == 0

    await row.arefresh_from_db()
    assert row.status == Exchange.Status.STREAMING
    reports = [record for record in caplog.records if other in record.getMessage()]
    assert len(reports) == 1 and reports[0].levelname == "ERROR" and "Redis channel layer" in reports[0].getMessage()


async def test_the_first_request_of_any_kind_puts_the_worker_on_duty():
    await worker.stop_duties()
    assert not worker.on_duty

    health = HttpCommunicator(application, "GET", "/healthz", headers=[(b"host", b"localhost")])
    response = await health.get_response()

    assert response["status"] == 200 and worker.on_duty


async def test_draining_refuses_new_prompts_while_streams_have_their_grace(upstream, settings):
    settings.STREAMING_SHUTDOWN_GRACE = 30
    upstream.then(Script(tokens=TOKENS, hang_after=1))
    socket = await open_socket()
    await socket.send(prompt(request="long"))
    start = await socket.receive()
    await socket.receive()

    draining = asyncio.create_task(worker.drain())
    await socket.send(prompt(request="late"))

    refused = await socket.receive()
    assert refused["code"] == "shutting_down" and refused["retryable"] is True and refused["request"] == "late"
    await socket.send({"type": "cancel", "stream": start["stream"]})
    assert (await socket.receive())["finish_reason"] == "cancelled"
    assert await socket.communicator.receive_output() == {"type": "websocket.close", "code": 4012}
    await socket.close()
    await draining


async def test_a_stream_that_outlives_the_grace_is_saved_with_what_was_relayed_and_its_sockets_told(upstream, settings):
    settings.STREAMING_SHUTDOWN_GRACE = 0.5
    upstream.then(Script(tokens=TOKENS, interval=0.05))  # longer than the grace: the stream is stopped mid-answer
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    relayed = texts([await socket.receive()])

    draining = asyncio.create_task(worker.drain())
    frames = await socket.stream_to_end()

    assert frames[-1]["code"] == "interrupted" and frames[-1]["stream"] == start["stream"]
    relayed += texts(frames)
    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.answer) == ("interrupted", relayed) and relayed
    assert await socket.communicator.receive_output() == {"type": "websocket.close", "code": 4012}
    await socket.close()
    await draining
    late = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN])
    assert (await late.connect())[0]  # a socket that reaches a draining worker is sent elsewhere at once:
    assert await late.receive_output() == {"type": "websocket.close", "code": 4012}


async def test_draining_lets_a_stream_that_finishes_in_time_complete(upstream, settings):
    settings.STREAMING_SHUTDOWN_GRACE = 30
    upstream.then(Script(tokens=TOKENS, interval=0.002))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()

    await worker.drain()

    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.answer) == ("completed", "".join(TOKENS))
    await socket.close()
