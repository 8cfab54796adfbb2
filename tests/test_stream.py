"""The streaming core over a real socket: frames, the log row, and who receives what."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from streaming.deployment import running
from streaming.models import Conversation, Exchange
from streaming.relay import generation as generation_module
from tests.conftest import new_session, open_socket, prompt, texts
from tests.fake_openai import Script

pytestmark = pytest.mark.django_db(transaction=True)


async def exchange(stream: str) -> Exchange:
    return await Exchange.objects.aget(id=stream)


async def test_full_stream_frames_and_log_row(upstream):
    upstream.then(Script(tokens=["The", " sky", " is", " blue", "."]))
    socket = await open_socket(session_key=await database_sync_to_async(new_session)())
    await socket.send(prompt("Why is the sky blue?", request="q-1", temperature=0.5, max_tokens=50))

    frames = await socket.stream_to_end()

    start, *deltas, done = frames
    assert start["type"] == "start" and start["request"] == "q-1" and start["model"] == "fake-model"
    assert start["demo"] is False and start["content"] == "Why is the sky blue?"
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert texts(deltas) == "The sky is blue."
    assert done["type"] == "done" and done["finish_reason"] == "stop" and done["seq"] == len(deltas)
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    assert done["ttft_ms"] is not None and done["duration_ms"] >= done["ttft_ms"]

    row = await exchange(start["stream"])
    assert row.status == Exchange.Status.COMPLETED
    assert row.answer == "The sky is blue."
    assert row.finish_reason == "stop" and row.last_seq == len(deltas)
    assert (row.prompt_tokens, row.completion_tokens) == (5, 5)
    assert row.parameters == {"temperature": 0.5, "max_tokens": 50}
    assert row.model == "fake-model" and row.request == "q-1" and row.session_key
    assert row.ttft_ms == done["ttft_ms"] and row.duration_ms == done["duration_ms"]

    sent = upstream.requests[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0.5 and sent["max_tokens"] == 50
    assert sent["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]
    assert upstream.requests[0].headers["authorization"] == "Bearer sk-test-secret-key"
    await socket.close()


async def test_every_socket_of_a_client_receives_the_stream_and_no_other_client_does(upstream):
    session = await database_sync_to_async(new_session)()
    first, second = await open_socket(session_key=session), await open_socket(session_key=session)
    stranger = await open_socket(session_key=await database_sync_to_async(new_session)())
    no_cookie = await open_socket()

    await first.send(prompt("Hi"))
    seen_by_first, seen_by_second = await first.stream_to_end(), await second.stream_to_end()

    assert seen_by_first == seen_by_second
    assert texts(seen_by_second) == "Hello, world!"
    assert await stranger.nothing_received() and await no_cookie.nothing_received()
    for socket in (first, second, stranger, no_cookie):
        await socket.close()


async def test_a_socket_without_session_is_a_client_of_its_own(upstream):
    lonely, other = await open_socket(), await open_socket()
    await lonely.send(prompt())
    assert (await lonely.stream_to_end())[-1]["type"] == "done"
    assert await other.nothing_received()
    await lonely.close()
    await other.close()


async def test_cancel_mid_stream_closes_the_upstream_response_and_keeps_the_partial_answer(upstream):
    upstream.then(Script(tokens=["one", " two", " three", " four"], hang_after=2))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await socket.receive_text("one two")

    await socket.send({"type": "cancel", "stream": start["stream"]})
    done = await socket.receive()

    assert done["type"] == "done" and done["finish_reason"] == "cancelled" and done["usage"] is None
    await asyncio.wait_for(upstream.requests[0].closed.wait(), timeout=1)  # the response was closed, within a second
    assert upstream.requests[0].tokens_sent == 2
    row = await exchange(start["stream"])
    assert (row.status, row.finish_reason, row.answer) == ("cancelled", "cancelled", "one two")
    await socket.close()


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(401, "upstream_error", False), (429, "rate_limited", True), (500, "upstream_unavailable", True)],
)
async def test_upstream_refusal_before_the_first_token(upstream, status, code, retryable):
    upstream.then(Script(status=status))
    socket = await open_socket()
    await socket.send(prompt())

    start, error = await socket.stream_to_end()

    assert error == {
        "type": "error",
        "stream": start["stream"],
        "code": code,
        "message": error["message"],
        "retryable": retryable,
    }
    assert "sk-test" not in error["message"] and "Traceback" not in error["message"]
    row = await exchange(start["stream"])
    assert (row.status, row.error_code, row.answer, row.ttft_ms) == ("failed", code, "", None)
    await socket.close()


async def test_connection_dropped_mid_stream_fails_with_the_partial_answer_saved(upstream):
    upstream.then(Script(tokens=["par", "tial", " and", " more"], drop_after=2))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert frames[-1]["code"] == "upstream_unavailable" and frames[-1]["retryable"] is True
    assert texts(frames) == "partial"
    row = await exchange(frames[0]["stream"])
    assert (row.status, row.answer, row.error_code) == ("failed", "partial", "upstream_unavailable")
    await socket.close()


@pytest.mark.parametrize("reason", ["length", "content_filter"])
async def test_upstream_finish_reasons_are_passed_on(upstream, reason):
    upstream.then(Script(tokens=["cut", " short"], finish_reason=reason))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == reason
    row = await exchange(frames[0]["stream"])
    assert (row.status, row.finish_reason, row.answer) == ("completed", reason, "cut short")
    await socket.close()


async def test_a_conversation_sends_its_earlier_turns_upstream(upstream):
    upstream.then(Script(tokens=["Paris", "."]), Script(tokens=["About", " 2", " million", "."]))
    socket = await open_socket()
    await socket.send(prompt("Capital of France?", system="Answer briefly."))
    first = await socket.stream_to_end()
    conversation = first[0]["conversation"]

    await socket.send(prompt("How many people live there?", request="r2", conversation=conversation))
    second = await socket.stream_to_end()

    assert second[0]["conversation"] == conversation
    assert upstream.requests[1].body["messages"] == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "How many people live there?"},
    ]
    assert upstream.requests[0].body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert await Exchange.objects.filter(conversation_id=conversation).acount() == 2
    assert await Conversation.objects.acount() == 1
    await socket.close()


async def test_the_answer_is_saved_in_full_when_every_socket_closes_mid_stream(upstream):
    upstream.then(Script(tokens=[f" w{i}" for i in range(20)], interval=0.01))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await socket.receive()  # the first delta: the stream is under way
    await socket.close()

    await running.streams_finished()

    row = await exchange(start["stream"])
    assert row.status == "completed" and row.answer == "".join(f" w{i}" for i in range(20))


async def test_a_fast_stream_is_coalesced_and_arrives_whole_and_in_order(upstream, settings):
    # Not a test of a slow socket: the communicator takes every frame the consumer sends at once, so nothing here is
    # ever slow. What it shows is that tokens arriving faster than the sends merge, in order, with nothing lost.
    tokens = [f" t{i}" for i in range(3000)]
    upstream.then(Script(tokens=tokens))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()

    await running.streams_finished()  # the test reads nothing more while the whole answer is relayed
    frames = [start, *await socket.stream_to_end()]

    deltas = [f for f in frames if f["type"] == "delta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert texts(frames) == "".join(tokens)
    assert len(deltas) < len(tokens)  # what arrived during a send went out together
    assert frames[-1]["seq"] == len(deltas)
    await socket.close()


async def test_the_per_client_stream_limit(upstream, settings):
    settings.STREAMING_MAX_STREAMS = 1
    upstream.then(Script(tokens=["a", "b"], hang_after=1))
    socket = await open_socket()
    await socket.send(prompt(request="first"))
    start = await socket.receive()
    await socket.receive()  # its first delta

    await socket.send(prompt(request="second"))
    refused = await socket.receive()

    assert refused["type"] == "error" and refused["code"] == "too_many_streams" and refused["request"] == "second"
    assert refused["retryable"] is True and "stream" not in refused
    await socket.send({"type": "cancel", "stream": start["stream"]})
    assert (await socket.receive())["finish_reason"] == "cancelled"
    asked = [request for request in upstream.requests if request.path.endswith(("/completions", "/responses"))]
    assert len(asked) == 1  # the refused prompt went nowhere (a cancel of a background response is no question)
    await socket.close()


async def test_a_second_prompt_runs_alongside_the_first(upstream):
    upstream.then(Script(tokens=["slow", " never"], hang_after=1), Script(tokens=["fast"]))
    socket = await open_socket()
    await socket.send(prompt(request="first"))
    first = await socket.receive()
    await socket.send(prompt(request="second"))
    frames = await socket.receive_until("done")
    second = next(f for f in frames if f["type"] == "start")
    assert second["request"] == "second"
    assert texts(f for f in frames if f["stream"] == second["stream"]) == "fast"
    assert texts(f for f in frames if f["stream"] == first["stream"]) == "slow"
    await socket.send({"type": "cancel", "stream": first["stream"]})
    assert (await socket.receive())["finish_reason"] == "cancelled"
    await socket.close()


async def test_the_demo_model_answers_when_no_key_is_configured(settings):
    settings.STREAMING_OPENAI_API_KEY = ""
    settings.STREAMING_DEMO_TOKENS_PER_SECOND = 2000
    socket = await open_socket(ready=False)
    ready = await socket.receive()
    assert ready["demo"] is True and ready["model"] == "demo" and ready["models"] == ["demo"]

    await socket.send(prompt("Tell me about streaming", max_tokens=30))
    frames = await socket.stream_to_end(timeout=10)

    assert frames[0]["demo"] is True and frames[0]["model"] == "demo"
    assert frames[-1]["finish_reason"] == "length" and frames[-1]["usage"]["completion_tokens"] == 30
    assert texts(frames).startswith('You asked: "Tell me about streaming"')
    row = await exchange(frames[0]["stream"])
    assert row.demo is True and row.answer == texts(frames) and row.status == "completed"
    await socket.close()


async def test_a_configured_key_is_never_replaced_by_the_demo(upstream):
    socket = await open_socket(ready=False)
    ready = await socket.receive()
    assert ready["demo"] is False and ready["model"] == "fake-model"
    await socket.close()


async def test_a_stream_past_the_time_limit_is_stopped_and_logged_as_interrupted(upstream, settings):
    settings.STREAMING_MAX_SECONDS = 0.5
    upstream.then(Script(tokens=["slow", " never"], hang_after=1))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert frames[-1]["code"] == "time_limit" and frames[-1]["retryable"] is False
    await asyncio.wait_for(upstream.requests[0].closed.wait(), timeout=1)
    row = await exchange(frames[0]["stream"])
    assert (row.status, row.error_code, row.answer) == ("interrupted", "time_limit", "slow")
    await socket.close()


async def test_a_start_that_cannot_reach_the_clients_sockets_ends_the_stream_and_the_log_says_so(upstream, monkeypatch):
    upstream.then(Script(tokens=["never", " seen"], hang_after=1))
    sent = generation_module.publish_event

    async def refuse_start(*, event, **kwargs):
        if event["kind"] == "start":
            raise ConnectionError("the channel layer is down")
        await sent(event=event, **kwargs)

    monkeypatch.setattr(generation_module, "publish_event", refuse_start)
    socket = await open_socket()
    await socket.send(prompt("Hi", request="q-lost"))

    frames = await socket.stream_to_end()
    start, end = frames[0], frames[-1]
    assert start["type"] == "start" and start["request"] == "q-lost"  # the asking socket's own, from its consumer
    assert end["type"] == "error" and end["code"] == "internal_error" and end["stream"] == start["stream"]
    await running.streams_finished()
    row = await Exchange.objects.aget(request="q-lost")
    assert row.status == Exchange.Status.FAILED and row.error_code == "internal_error"
    await socket.close()


async def test_the_socket_that_asked_follows_its_stream_even_when_the_groups_start_is_lost(upstream, monkeypatch):
    upstream.then(Script(tokens=["Still", " here."]))
    sent = generation_module.publish_event

    async def lose_start(*, event, **kwargs):
        if event["kind"] != "start":  # as in the second after a Redis restart, before the layer subscribes again
            await sent(event=event, **kwargs)

    monkeypatch.setattr(generation_module, "publish_event", lose_start)
    session = await database_sync_to_async(new_session)()
    asker, other_tab = await open_socket(session_key=session), await open_socket(session_key=session)
    await asker.send(prompt("Hi", request="q-asked"))

    frames = await asker.stream_to_end()

    assert frames[0]["type"] == "start" and frames[0]["request"] == "q-asked"
    assert texts(frames) == "Still here." and frames[-1]["type"] == "done"
    assert await other_tab.nothing_received()  # a tab that saw no start does not follow (it resumes from the API)
    await asker.close()
    await other_tab.close()
