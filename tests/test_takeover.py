"""Answers that outlive their worker (`STREAMING_TAKEOVER`), in one process: the real SDK against the fake provider's
background mode, the real Redis for the handover, and a worker's death played by its generation letting go of the
stream without ending it (`Generation.release`) while the log names a worker with no heartbeat. The same with real
daphne processes, SIGKILL and SIGTERM is in test_takeover_workers.py.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis
from channels.layers import get_channel_layer
from prometheus_client import REGISTRY

from streaming.deployment import running
from streaming.deployment.shared import handover_key, record_key
from streaming.deployment.worker import sweep_dead_workers, worker
from streaming.models import Exchange, ToolCall
from streaming.tools import tool
from tests.conftest import Socket, open_socket, prompt, texts
from tests.fake_openai import Background, FakeOpenAI, Script, ToolCallScript

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

TOKENS = [f" w{i}" for i in range(30)]
DEAD = "dead-worker"
TAKEN = "streaming_takeovers_total"


class Probe:
    def __init__(self) -> None:
        self.runs: list[str] = []
        self.running = asyncio.Event()


probe = Probe()


@tool
async def place_order(item: str) -> str:
    """Orders an item (running it twice orders it twice)."""
    probe.runs.append("place_order")
    probe.running.set()
    await asyncio.Event().wait()  # until the worker running it dies
    return "ordered"


@tool(idempotent=True)
async def look_up(item: str) -> str:
    """Looks an item up; the first run waits until the worker running it dies."""
    probe.runs.append("look_up")
    if len(probe.runs) == 1:
        probe.running.set()
        await asyncio.Event().wait()
    return f"{item} is in stock."


@pytest.fixture
def takeover(upstream, settings, redis_url):
    global probe
    probe = Probe()
    settings.STREAMING_OPENAI_API = "responses"
    settings.STREAMING_TAKEOVER = True
    settings.STREAMING_REDIS_URL = redis_url
    settings.STREAMING_TOOLS = [f"{__name__}.place_order", f"{__name__}.look_up"]
    settings.STREAMING_TOOL_MODELS = ["*"]
    return upstream


async def die(stream: str) -> None:
    """This worker dies mid-answer: its generation stops relaying without ending anything, and the log names a
    worker whose heartbeat is gone."""
    generation = running.get(uuid.UUID(stream))
    generation.release()
    await running.streams_finished()
    await Exchange.objects.filter(id=stream).aupdate(worker=DEAD)


async def sweep(as_worker: str | None = None) -> int:
    return await sweep_dead_workers(layer=get_channel_layer(), worker=as_worker or worker.id, started=worker.started)


async def asked(fake: FakeOpenAI, script: Script, *, relayed: int) -> tuple[Socket, dict[str, Any]]:
    """A socket that asked for `script`'s answer, and its stream's `start`, once the first `relayed` tokens reached
    it."""
    fake.then(script)
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await socket.receive_text("".join(script.tokens[:relayed]))
    return socket, start


def background(fake) -> Background:
    (response,) = fake.responses.values()
    return response


def retrieves(fake) -> list[dict[str, str]]:
    return [request.query for request in fake.requests if request.method == "GET"]


async def test_a_worker_that_dies_mid_answer_is_taken_over_and_the_client_gets_the_rest_exactly(takeover):
    script = Script(tokens=TOKENS, pause_after=10)
    takeover.then(script)
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    before = [await socket.receive() for _ in range(1)]
    while texts(before) != "".join(TOKENS[:10]):
        before.append(await socket.receive())
    await takeover.requests[0].paused.wait()

    await die(start["stream"])
    assert await sweep() == 1
    script.proceed.set()
    after = await socket.stream_to_end()

    deltas = [frame for frame in before + after if frame["type"] == "delta"]
    assert [delta["seq"] for delta in deltas] == list(range(1, len(deltas) + 1))
    assert [frame["pos"] for frame in before + after[:-1]] == list(range(1, len(before) + len(after)))
    assert texts(deltas) == "".join(TOKENS)
    done = after[-1]
    assert (done["type"], done["finish_reason"], done["seq"], done["ttft_ms"]) == ("done", "stop", len(deltas), None)
    # Re-attached after the event of the tenth token, the last one the dead worker relayed.
    tenth = [e for e in background(takeover).payloads if e["type"] == "response.output_text.delta"][9]
    assert retrieves(takeover) == [{"stream": "true", "starting_after": str(tenth["sequence_number"])}]
    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.answer, row.worker, row.takeovers) == ("completed", "".join(TOKENS), worker.id, 1)
    assert takeover.cancelled == []  # it ended by itself: nothing to cancel
    await socket.close()


async def test_of_two_workers_that_notice_at_once_exactly_one_takes_the_stream_over(takeover):
    script = Script(tokens=TOKENS, pause_after=5)
    socket, start = await asked(takeover, script, relayed=5)
    await takeover.requests[0].paused.wait()
    await die(start["stream"])

    taken = await asyncio.gather(sweep("survivor-1"), sweep("survivor-2"))

    assert sorted(taken) == [0, 1] and running.count() == 1
    script.proceed.set()
    rest = await socket.stream_to_end()
    assert texts(rest) == "".join(TOKENS[5:]) and rest[-1]["type"] == "done"
    assert len(retrieves(takeover)) == 1
    row = await Exchange.objects.aget(id=start["stream"])
    assert row.worker in {"survivor-1", "survivor-2"} and row.status == "completed"
    await socket.close()


async def test_a_cancel_after_a_take_over_stops_the_stream_and_cancels_the_providers_response(takeover):
    socket, start = await asked(takeover, Script(tokens=TOKENS, hang_after=4), relayed=4)
    await die(start["stream"])
    assert await sweep() == 1

    await socket.send({"type": "cancel", "stream": start["stream"]})

    done = await socket.receive()
    assert (done["type"], done["finish_reason"]) == ("done", "cancelled")
    await running.streams_finished()
    assert takeover.cancelled == [background(takeover).id]
    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.answer) == ("cancelled", "".join(TOKENS[:4]))
    await socket.close()


@pytest.mark.parametrize("stop", ["cancel", "time_limit", "nobody_watching"])
async def test_every_stop_the_server_decides_cancels_the_providers_background_response(takeover, settings, stop):
    if stop == "time_limit":
        settings.STREAMING_MAX_SECONDS = 1
    if stop == "nobody_watching":
        settings.STREAMING_DETACHED_SECONDS = 0
        settings.STREAMING_PRESENCE_SECONDS = 0.3
    socket, start = await asked(takeover, Script(tokens=TOKENS, hang_after=2), relayed=2)

    if stop == "cancel":
        await socket.send({"type": "cancel", "stream": start["stream"]})
    if stop == "nobody_watching":
        await socket.close()
    await running.streams_finished()

    response = background(takeover)
    await asyncio.wait_for(response.cancelled_event.wait(), timeout=5)
    assert takeover.cancelled == [response.id] and response.status == "cancelled"
    row = await Exchange.objects.aget(id=start["stream"])
    expected = {"cancel": "cancelled", "time_limit": "interrupted", "nobody_watching": "interrupted"}[stop]
    assert row.status == expected
    if stop != "nobody_watching":
        await socket.close()


async def test_a_stream_whose_response_the_provider_no_longer_has_ends_interrupted_with_its_answer_so_far(takeover):
    socket, start = await asked(takeover, Script(tokens=TOKENS, hang_after=3), relayed=3)
    await die(start["stream"])
    takeover.forget(background(takeover).id)

    assert await sweep() == 1
    end = await socket.stream_to_end()

    assert (end[-1]["type"], end[-1]["code"]) == ("error", "interrupted")
    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.answer) == ("interrupted", "".join(TOKENS[:3]))
    await socket.close()


async def test_a_worker_that_dies_while_a_tool_runs_ends_the_stream_interrupted_rather_than_run_it_twice(takeover):
    takeover.then(Script(tool_calls=[ToolCallScript("place_order", {"item": "tea"})]))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await probe.running.wait()
    frames = await socket.receive_until("tool_running")
    await die(start["stream"])

    assert await sweep() == 1  # swept, not taken over
    end = await socket.stream_to_end()

    assert (end[-1]["type"], end[-1]["code"]) == ("error", "interrupted") and running.count() == 0
    assert probe.runs == ["place_order"] and retrieves(takeover) == []
    row = await Exchange.objects.aget(id=start["stream"])
    assert row.status == "interrupted"
    assert [f["name"] for f in frames if f["type"] == "tool_call"] == ["place_order"]
    await socket.close()


async def test_an_idempotent_tool_that_was_running_runs_again_after_the_take_over_and_the_answer_completes(takeover):
    takeover.then(
        Script(tool_calls=[ToolCallScript("look_up", {"item": "tea"})], reasoning=["Check", " stock."]),
        Script(tokens=["In", " stock."]),
    )
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await probe.running.wait()
    before = await socket.receive_until("tool_running")
    await die(start["stream"])

    assert await sweep() == 1
    after = await socket.stream_to_end()

    assert probe.runs == ["look_up", "look_up"]
    kinds = [frame["type"] for frame in before + after]
    assert kinds.count("tool_running") == 1 and kinds.count("tool_result") == 1  # sent once, as if it ran once
    assert [frame["pos"] for frame in before + after[:-1]] == list(range(1, len(kinds)))
    assert texts(after) == "In stock." and after[-1]["finish_reason"] == "stop"
    # The next round was asked with the reasoning item and the call, as if no worker had died.
    second = [request for request in takeover.requests if request.method == "POST"][1]
    assert [item.get("type") for item in second.input][-3:] == ["reasoning", "function_call", "function_call_output"]
    assert second.input[-1]["output"] == "tea is in stock."
    calls = [call async for call in ToolCall.objects.filter(exchange_id=start["stream"])]
    assert [(call.name, call.status) for call in calls] == [("look_up", "done")]
    await socket.close()


async def test_a_later_round_taken_over_mid_answer_tells_the_model_that_rounds_text_and_calls_once(takeover, settings):
    settings.STREAMING_TOOLS = [*settings.STREAMING_TOOLS, "streaming.tools.builtin.current_time"]
    second = Script(tokens=["B1", " B2", " B3", " B4"], tool_calls=[ToolCallScript("current_time")], pause_after=2)
    takeover.then(
        Script(tokens=["A."], tool_calls=[ToolCallScript("current_time")]),
        second,
        Script(tokens=[" C."]),
    )
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    before = await socket.receive_until("tool_result")
    before.append(await socket.receive())
    while texts(before) != "A.B1 B2":
        before.append(await socket.receive())
    await takeover.requests[1].paused.wait()

    await die(start["stream"])
    assert await sweep() == 1
    second.proceed.set()
    after = await socket.stream_to_end()

    assert [frame["pos"] for frame in before + after[:-1]] == list(range(1, len(before) + len(after)))
    assert texts(before + after) == "A.B1 B2 B3 B4 C." and after[-1]["finish_reason"] == "stop"
    third = [request for request in takeover.requests if request.method == "POST"][2]
    said = [item["content"] for item in third.input if item.get("role") == "assistant"]
    assert said == ["A.", "B1 B2 B3 B4"]  # the second round's text once, and none of the first round's
    assert [item["type"] for item in third.input if item.get("type")].count("function_call") == 2
    await socket.close()


async def test_a_stream_whose_handover_a_redis_restart_emptied_is_still_taken_over_when_its_worker_dies(
    takeover, redis_url
):
    script = Script(tokens=TOKENS, pause_after=8, interval=0.05)  # a frame per token or so
    takeover.then(script)
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    first = (await socket.receive())["text"]
    redis.Redis.from_url(redis_url).flushdb()  # what a Redis restart without persistence does
    await socket.receive_text("".join(TOKENS[:8])[len(first) :])  # the next frame found the hole, wrote it again
    await takeover.requests[0].paused.wait()

    await die(start["stream"])
    assert await sweep() == 1
    script.proceed.set()

    end = await socket.stream_to_end()
    assert texts(end) == "".join(TOKENS[8:]) and end[-1]["finish_reason"] == "stop"
    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.answer, row.takeovers) == ("completed", "".join(TOKENS), 1)
    await socket.close()


async def test_a_handover_that_a_redis_restart_emptied_is_begun_again_and_still_expires(takeover, redis_url):
    store = redis.Redis.from_url(redis_url)
    takeover.then(Script(tokens=TOKENS, hang_after=8, interval=0.02))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    deltas = [await socket.receive()]

    store.flushdb()  # what a Redis restart without persistence does
    while texts(deltas) != "".join(TOKENS[:8]):
        deltas.append(await socket.receive())

    key = handover_key(start["stream"])
    assert store.hget(key, "after") is not None and store.ttl(key) > 0  # nothing kept for good
    await socket.send({"type": "cancel", "stream": start["stream"]})
    assert (await socket.stream_to_end())[-1]["finish_reason"] == "cancelled"
    await socket.close()


async def test_a_stream_that_cannot_go_on_elsewhere_ends_interrupted_and_its_response_is_cancelled(takeover, redis_url):
    socket, start = await asked(takeover, Script(tokens=TOKENS, hang_after=3), relayed=3)
    await die(start["stream"])
    redis.Redis.from_url(redis_url).delete(record_key(start["stream"]))  # what the handover says was relayed is gone

    assert await sweep() == 1
    end = await socket.stream_to_end()

    assert (end[-1]["type"], end[-1]["code"]) == ("error", "interrupted") and retrieves(takeover) == []
    assert takeover.cancelled == [background(takeover).id]  # no one reads the rest: the provider stops writing it
    await socket.close()


async def test_the_demo_model_asks_for_no_background_response_and_a_cancel_cancels_nothing_upstream(
    takeover, settings, caplog
):
    settings.STREAMING_OPENAI_API_KEY = ""  # the demo model answers
    settings.STREAMING_DEMO_TOKENS_PER_SECOND = 20
    socket = await open_socket()
    await socket.send(prompt(content="Tell me a story"))
    start = await socket.receive()
    await socket.receive()

    await socket.send({"type": "cancel", "stream": start["stream"]})

    assert (await socket.stream_to_end())[-1]["finish_reason"] == "cancelled"
    assert not any("could not cancel" in record.getMessage() for record in caplog.records)
    assert takeover.requests == []
    await socket.close()


async def test_a_worker_that_said_it_is_gone_is_taken_over_at_once_not_after_the_timeout(takeover):
    script = Script(tokens=TOKENS, pause_after=5)
    socket, start = await asked(takeover, script, relayed=5)
    await die(start["stream"])
    missing: dict[str, float] = {}

    async def sweep_as_a_worker(gone: set[str]) -> int:
        kept = dict(missing=missing, gone=gone)
        return await sweep_dead_workers(layer=get_channel_layer(), worker=worker.id, started=worker.started, **kept)

    assert await sweep_as_a_worker(set()) == 0  # a missing heartbeat may be a Redis restart: not yet
    gone = {DEAD, "another-worker-with-no-stream"}
    assert await sweep_as_a_worker(gone) == 1
    assert gone == {DEAD}  # a gone worker is forgotten once it has no stream left
    script.proceed.set()
    assert texts(await socket.stream_to_end()) == "".join(TOKENS[5:])
    await socket.close()


async def test_a_take_over_is_counted_as_one_and_not_as_a_second_prompt(takeover):
    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    prompts, taken = count("streaming_prompts_total", model="fake-model"), count(TAKEN, outcome="taken_over")
    script = Script(tokens=TOKENS, pause_after=5)
    socket, start = await asked(takeover, script, relayed=5)
    await die(start["stream"])
    await sweep()
    script.proceed.set()
    await socket.stream_to_end()

    assert count("streaming_prompts_total", model="fake-model") == prompts + 1
    assert count(TAKEN, outcome="taken_over") == taken + 1
    await socket.close()


async def test_a_stream_taken_over_can_be_taken_over_again_when_its_new_worker_dies_too(takeover):
    script = Script(tokens=TOKENS, pause_after=5)
    socket, start = await asked(takeover, script, relayed=5)
    await die(start["stream"])
    assert await sweep() == 1

    await die(start["stream"])  # the worker that took it over dies before the provider wrote more
    assert await sweep() == 1
    script.proceed.set()

    assert texts(await socket.stream_to_end()) == "".join(TOKENS[5:])
    fifth = [e for e in background(takeover).payloads if e["type"] == "response.output_text.delta"][4]
    # Each re-attached (if it got as far as asking) where the first worker had left off.
    assert {query["starting_after"] for query in retrieves(takeover)} == {str(fifth["sequence_number"])}
    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.answer, row.takeovers) == ("completed", "".join(TOKENS), 2)
    await socket.close()


async def test_a_take_over_that_fails_unexpectedly_still_ends_the_stream_interrupted(takeover, monkeypatch, caplog):
    async def broken(**kwargs: Any) -> bool:
        raise RuntimeError("a fault in the take-over")

    monkeypatch.setattr("streaming.deployment.worker.take_over", broken)
    socket, start = await asked(takeover, Script(tokens=TOKENS, hang_after=3), relayed=3)
    await die(start["stream"])

    assert await sweep() == 1
    end = await socket.stream_to_end()

    assert (end[-1]["type"], end[-1]["code"]) == ("error", "interrupted")
    assert any("taking it over failed" in record.getMessage() for record in caplog.records)
    await socket.close()
