"""Reasoning and tool calls end to end: the real consumer over a socket, the real SDK against the fake provider
speaking each server's own wire shapes (`tests.fake_openai`), the frames of protocol 2, what the model is sent, and
the log rows.

The tools below are real `@tool` functions, offered through `STREAMING_TOOLS` by their dotted paths. What they saw
is kept in `probe`, fresh for every test.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator

from chatproject.asgi import application
from streaming.clients import client_of_session
from streaming.models import Exchange, ToolCall
from streaming.tools import Caller, ToolError, tool
from tests.conftest import Socket, new_session, open_socket, prompt, texts
from tests.fake_openai import Script, ToolCallScript

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "internal detail sk-live-123 at /srv/app/orders.py line 42"
TOOL_KINDS = ("tool_call", "tool_arguments", "tool_running", "tool_result")
KEPT_KINDS = ("reasoning", "delta", *TOOL_KINDS)  # the frames that carry `pos`


# -- the tools -----------------------------------------------------------------------------------------------------


class Probe:
    """What the test tools saw, and the gates a test holds them at."""

    def reset(self) -> None:
        self.ran: list[tuple[str, Any]] = []
        self.release = asyncio.Event()  # lets `wait_async` finish
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()  # `wait_async` saw CancelledError
        self.sync_release = threading.Event()  # lets `wait_sync` finish
        self.sync_started = threading.Event()
        self.sync_finished = threading.Event()


probe = Probe()
probe.reset()


@tool
def order_status(number: int, *, caller: Caller) -> str:
    """The status of one of the asking person's orders, by its number."""
    probe.ran.append(("order_status", {"number": number, "caller": caller.key}))
    return f"Order {number} has shipped."


@tool
async def weather(city: str) -> str:
    """Today's weather in a city."""
    await asyncio.sleep(0)
    probe.ran.append(("weather", {"city": city}))
    return f"Sunny in {city}."


@tool
def explode() -> str:
    """A tool that breaks."""
    probe.ran.append(("explode", {}))
    raise RuntimeError(SECRET)


@tool
async def refuse(number: int) -> str:
    """A tool that says in its own words why it cannot answer."""
    probe.ran.append(("refuse", {"number": number}))
    raise ToolError("There is no such order.")


@tool
async def wait_async() -> str:
    """Waits until the test lets it finish."""
    probe.ran.append(("wait_async", {}))
    probe.started.set()
    try:
        await probe.release.wait()
    except asyncio.CancelledError:
        probe.cancelled.set()
        raise
    return "finished"


@tool
def wait_sync() -> str:
    """Blocks its thread until the test lets it finish."""
    probe.ran.append(("wait_sync", {}))
    probe.sync_started.set()
    probe.sync_release.wait(timeout=10)
    probe.sync_finished.set()
    return "finished"


@tool(staff_required=True)
def purge_cache() -> str:
    """Empties the cache (staff only)."""
    probe.ran.append(("purge_cache", {}))
    return "purged"


TOOLS = ["order_status", "weather", "explode", "refuse", "wait_async", "wait_sync", "purge_cache"]


@pytest.fixture(autouse=True)
def offered_tools(upstream, settings):
    """Every test here talks to the fake provider, with the tools above offered to every model."""
    settings.STREAMING_TOOLS = [f"{__name__}.{name}" for name in TOOLS]
    settings.STREAMING_TOOL_MODELS = ["*"]
    probe.reset()
    yield
    probe.sync_release.set()  # no tool thread stays blocked after its test


# -- helpers -------------------------------------------------------------------------------------------------------


def of(frames: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] in kinds]


def reasoning_text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in of(frames, "reasoning"))


def assert_protocol_2_stream(frames: list[dict[str, Any]]) -> None:
    """A whole stream, start to end: every kept frame has the next `pos`, deltas their own contiguous `seq`."""
    assert frames[0]["type"] == "start" and frames[-1]["type"] in ("done", "error")
    assert [f["pos"] for f in of(frames, *KEPT_KINDS)] == list(range(1, len(of(frames, *KEPT_KINDS)) + 1))
    deltas = of(frames, "delta")
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    if frames[-1]["type"] == "done":
        assert frames[-1]["seq"] == len(deltas)


def call_frames(frames: list[dict[str, Any]], call: str) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("call") == call]


def call_story(frames: list[dict[str, Any]], call: str, *, ran: bool = True) -> tuple[str, str, dict[str, Any]]:
    """A call's frames in their order: its name once, its arguments as written, `tool_running` if it ran, and its
    result last. Returns the name, the arguments text and the `tool_result` frame."""
    own = call_frames(frames, call)
    kinds = [f["type"] for f in own]
    assert kinds[0] == "tool_call" and kinds.count("tool_call") == 1, kinds
    assert kinds[-1] == "tool_result" and kinds.count("tool_result") == 1, kinds
    middle = kinds[1:-1]
    if ran:
        assert middle[-1:] == ["tool_running"] and middle.count("tool_running") == 1, kinds
        middle = middle[:-1]
    else:
        middle = [kind for kind in middle if kind != "tool_running"]  # a refused call may or may not say it started
    assert set(middle) <= {"tool_arguments"}, kinds
    arguments = "".join(f["text"] for f in own if f["type"] == "tool_arguments")
    return own[0]["name"], arguments, own[-1]


def assert_done(result: dict[str, Any], text: str) -> None:
    assert result["status"] == "done" and result["result"] == text and result["error"] is None, result
    assert isinstance(result["duration_ms"], int) and result["duration_ms"] >= 0


def assert_failed(result: dict[str, Any], code: str) -> str:
    assert result["status"] == "failed" and result["result"] is None, result
    assert result["error"]["code"] == code and result["error"]["message"], result
    return result["error"]["message"]


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


async def receive_until(socket: Socket, done: Any, timeout: float = 5) -> list[dict[str, Any]]:
    """Frames until `done(frames)` holds."""
    frames: list[dict[str, Any]] = []
    while not done(frames):
        frames.append(await socket.receive(timeout))
    return frames


async def exchange(stream: str) -> Exchange:
    return await Exchange.objects.aget(id=stream)


async def calls_of(stream: str) -> list[ToolCall]:
    return [call async for call in ToolCall.objects.filter(exchange_id=stream).order_by("position")]


def round_with_calls(*calls: ToolCallScript, **options: Any) -> Script:
    return Script(tool_calls=list(calls), **options)


ORDER = ToolCallScript("order_status", {"number": 7}, id="call_order")
WEATHER = ToolCallScript("weather", {"city": "Paris"}, id="call_weather")
REASONING = ["The user asks", " about the sky.", " Rayleigh scattering", " explains it."]
ANSWER = ["Short", " waves", " scatter", " more."]


# -- reasoning -----------------------------------------------------------------------------------------------------

REASONING_SERVERS = ["deepseek", "llama.cpp", "vllm", "ollama", "openrouter"]


@pytest.mark.parametrize("server", REASONING_SERVERS)
async def test_each_servers_reasoning_shape_reaches_the_client_as_reasoning_frames_before_the_answer(upstream, server):
    upstream.then(Script(server=server, reasoning=REASONING, tokens=ANSWER))
    socket = await open_socket()
    await socket.send(prompt("Why is the sky blue?"))

    frames = await socket.stream_to_end()

    assert_protocol_2_stream(frames)
    kinds = [f["type"] for f in frames]
    assert kinds.index("delta") > max(i for i, kind in enumerate(kinds) if kind == "reasoning")
    assert reasoning_text(frames) == "".join(REASONING)  # OpenRouter's text in two fields counts once
    assert texts(frames) == "".join(ANSWER)
    done = frames[-1]
    assert done["finish_reason"] == "stop" and done["usage"]["completion_tokens"] == upstream.requests[0].tokens_sent
    assert done["first_output_ms"] is not None and done["ttft_ms"] is not None
    assert done["first_output_ms"] <= done["ttft_ms"] <= done["duration_ms"]
    row = await exchange(frames[0]["stream"])
    assert (row.reasoning, row.answer, row.status) == ("".join(REASONING), "".join(ANSWER), "completed")
    assert (row.first_output_ms, row.ttft_ms) == (done["first_output_ms"], done["ttft_ms"])
    await socket.close()


@pytest.mark.parametrize("server", REASONING_SERVERS)
async def test_reasoning_is_relayed_as_it_comes_and_ttft_waits_for_the_first_answer_text(upstream, server):
    # Ollama and OpenRouter send `content: ""` on every reasoning chunk: that is no answer text yet.
    script = Script(server=server, reasoning=REASONING, tokens=ANSWER, pause_after=2)
    upstream.then(script)
    socket = await open_socket()
    await socket.send(prompt())
    await socket.receive()  # start

    live = await receive_until(socket, lambda frames: reasoning_text(frames) == "".join(REASONING[:2]))

    assert of(live, "reasoning") == live  # the page sees the thinking while the model still thinks
    await asyncio.sleep(0.3)
    script.proceed.set()
    rest = await socket.stream_to_end()
    assert reasoning_text(live + rest) == "".join(REASONING) and texts(rest) == "".join(ANSWER)
    done = rest[-1]
    assert done["ttft_ms"] >= done["first_output_ms"] + 250
    await socket.close()


async def test_an_inline_think_block_split_across_chunks_is_reasoning_and_not_answer_text(upstream):
    # llama.cpp with --reasoning-format none, or Qwen on a server without a reasoning parser: the tags in `content`.
    tokens = ["<thi", "nk>Hmm, ", "short waves", " scatter.</th", "ink>Short", " waves", " scatter", " more."]
    script = Script(server="llama.cpp", tokens=tokens, pause_after=4)  # the model pauses after "</th"
    upstream.then(script)
    socket = await open_socket()
    await socket.send(prompt("Why is the sky blue?"))
    start = await socket.receive()
    live = await receive_until(socket, lambda frames: reasoning_text(frames) == "Hmm, short waves scatter.")
    await asyncio.sleep(0.3)
    script.proceed.set()

    frames = [start, *live, *await socket.stream_to_end()]

    assert_protocol_2_stream(frames)
    assert reasoning_text(frames) == "Hmm, short waves scatter."
    assert texts(frames) == "Short waves scatter more."
    assert "<" not in texts(frames) + reasoning_text(frames)
    assert frames[-1]["ttft_ms"] >= frames[-1]["first_output_ms"] + 250  # the tags were not answer text
    row = await exchange(frames[0]["stream"])
    assert (row.reasoning, row.answer) == ("Hmm, short waves scatter.", "Short waves scatter more.")
    await socket.close()


async def test_a_lone_closing_think_tag_ends_reasoning_the_chat_template_opened(upstream, settings):
    # The chat template wrote `<think>` into the prompt, so the content starts inside the block. The design names no
    # switch for this; the backend's is STREAMING_THINKING_MODELS (streaming/relay/thinking.py), used here.
    settings.STREAMING_THINKING_MODELS = ["fake-model"]
    upstream.then(Script(server="vllm", tokens=["Hmm, the user", " asks.</th", "ink>", "The answer", "."]))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert_protocol_2_stream(frames)
    assert reasoning_text(frames) == "Hmm, the user asks."
    assert texts(frames) == "The answer."
    await socket.close()


async def test_a_think_tag_later_in_the_content_is_answer_text(upstream):
    tokens = ["Models write ", "<think>", " before", " they answer; ", "</think>", " closes it."]
    upstream.then(Script(server="llama.cpp", tokens=tokens))
    socket = await open_socket()
    await socket.send(prompt("How do reasoning models mark their thinking?"))

    frames = await socket.stream_to_end()

    assert of(frames, "reasoning") == []
    assert texts(frames) == "".join(tokens)
    assert (await exchange(frames[0]["stream"])).reasoning == ""
    await socket.close()


@pytest.mark.parametrize(
    ("first_answer", "reasoning_said"),
    [
        (Script(server="deepseek", reasoning=REASONING, tokens=ANSWER), "".join(REASONING)),
        (Script(server="llama.cpp", tokens=["<think>", "Rayleigh.", "</think>", *ANSWER]), "Rayleigh."),
    ],
    ids=["reasoning_content", "inline-think"],
)
async def test_reasoning_is_logged_apart_and_not_sent_back_to_the_model_in_the_next_turn(
    upstream, first_answer, reasoning_said
):
    upstream.then(first_answer, Script(tokens=["Yes", "."]))
    socket = await open_socket()
    await socket.send(prompt("Why is the sky blue?"))
    first = await socket.stream_to_end()
    conversation = first[0]["conversation"]

    await socket.send(prompt("Is that why sunsets are red?", request="r2", conversation=conversation))
    await socket.stream_to_end()

    row = await exchange(first[0]["stream"])
    assert (row.reasoning, row.answer) == (reasoning_said, "".join(ANSWER))
    later = upstream.requests[1].body
    assert later["messages"] == [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "".join(ANSWER)},
        {"role": "user", "content": "Is that why sunsets are red?"},
    ]
    assert reasoning_said not in json.dumps(later)
    await socket.close()


async def test_an_answer_cut_short_while_reasoning_has_reasoning_and_no_answer_text(upstream):
    upstream.then(Script(server="vllm", reasoning=REASONING, tokens=[], finish_reason="length"))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    done = frames[-1]
    assert done["finish_reason"] == "length" and done["seq"] == 0 and of(frames, "delta") == []
    assert done["ttft_ms"] is None and done["first_output_ms"] is not None  # thought, but never answered
    row = await exchange(frames[0]["stream"])
    assert (row.reasoning, row.answer, row.ttft_ms) == ("".join(REASONING), "", None)
    await socket.close()


async def test_cancel_during_reasoning_closes_the_response_and_keeps_the_reasoning_so_far(upstream):
    upstream.then(Script(server="openrouter", reasoning=REASONING, tokens=ANSWER, hang_after=2))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await receive_until(socket, lambda frames: reasoning_text(frames) == "".join(REASONING[:2]))

    await socket.send({"type": "cancel", "stream": start["stream"]})
    done = await socket.receive()

    assert done["type"] == "done" and done["finish_reason"] == "cancelled"
    await asyncio.wait_for(upstream.requests[0].closed.wait(), timeout=1)
    row = await exchange(start["stream"])
    assert (row.status, row.reasoning, row.answer) == ("cancelled", "".join(REASONING[:2]), "")
    await socket.close()


# -- tool calls ----------------------------------------------------------------------------------------------------


async def test_ready_lists_the_tools_offered_to_this_client_and_protocol_2(upstream):
    socket = await open_socket(ready=False)
    ready = await socket.receive()

    assert ready["protocol"] == 2
    offered = [t["name"] for t in ready["tools"]]
    assert offered == [name for name in TOOLS if name != "purge_cache"]  # staff only; this visitor is not staff
    assert ready["tools"][0] == {"name": "order_status", "description": order_status.__doc__}
    await socket.close()


@pytest.mark.parametrize(
    ("server", "interleave"),
    [("openai", False), ("vllm", True), ("llama.cpp", False), ("openrouter", True), ("deepseek", False)],
)
async def test_several_tool_calls_in_one_turn_run_and_their_results_go_back_with_their_ids(
    upstream, server, interleave
):
    thinking = [] if server == "openai" else ["Two lookups."]
    upstream.then(
        Script(
            server=server,
            reasoning=thinking,
            tokens=["Let me check."],
            tool_calls=[ORDER, WEATHER],
            interleave_tool_calls=interleave,
        ),
        Script(server=server, tokens=["Order 7 has shipped", " and Paris is sunny."]),
    )
    session = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session)
    await socket.send(prompt("Where is order 7, and the weather in Paris?"))

    frames = await socket.stream_to_end()

    assert_protocol_2_stream(frames)
    assert reasoning_text(frames) == "".join(thinking)
    name, arguments, result = call_story(frames, "call_order")
    assert (name, arguments) == ("order_status", '{"number": 7}')
    assert_done(result, "Order 7 has shipped.")
    name, arguments, result = call_story(frames, "call_weather")
    assert (name, arguments) == ("weather", '{"city": "Paris"}')
    assert_done(result, "Sunny in Paris.")
    kinds = [f["type"] for f in frames]
    written = [i for i, kind in enumerate(kinds) if kind in ("tool_call", "tool_arguments")]
    assert kinds.index("tool_running") > max(written)  # the calls run once the model's round has ended
    assert texts(frames) == "Let me check.Order 7 has shipped and Paris is sunny."
    assert frames[-1]["finish_reason"] == "stop"
    assert sorted(probe.ran) == [
        ("order_status", {"number": 7, "caller": client_of_session(session).key}),  # told who asks
        ("weather", {"city": "Paris"}),
    ]

    asked, follow_up = upstream.requests[0].body, upstream.requests[1].body
    assert [t["function"]["name"] for t in asked["tools"]] == [name for name in TOOLS if name != "purge_cache"]
    assert asked["tools"][0]["function"]["parameters"]["properties"] == {"number": {"type": "integer"}}
    assert "caller" not in json.dumps(asked["tools"]) and asked.get("tool_choice") in (None, "auto")
    # Reasoning goes back only where DeepSeek's shape requires it: with the tool calls it led to.
    echoed = {"reasoning_content": "Two lookups."} if server in ("deepseek", "llama.cpp") else {}
    assert follow_up["messages"] == [
        {"role": "user", "content": "Where is order 7, and the weather in Paris?"},
        {
            **echoed,
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_order",
                    "type": "function",
                    "function": {"name": "order_status", "arguments": '{"number": 7}'},
                },
                {
                    "id": "call_weather",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_order", "content": "Order 7 has shipped."},
        {"role": "tool", "tool_call_id": "call_weather", "content": "Sunny in Paris."},
    ]
    assert follow_up.get("tool_choice") != "none" and follow_up["tools"] == asked["tools"]
    await socket.close()


async def test_ollamas_whole_calls_in_one_chunk_each_run_with_the_ids_ollama_gave(upstream):
    upstream.then(
        Script(
            server="ollama",
            reasoning=["Two lookups."],
            tool_calls=[
                ToolCallScript("order_status", {"number": 7}),
                ToolCallScript("weather", {"city": "Paris"}),
            ],
        ),
        Script(server="ollama", tokens=["Shipped", ", and sunny."]),
    )
    socket = await open_socket()
    await socket.send(prompt("Where is order 7, and the weather in Paris?"))

    frames = await socket.stream_to_end()

    assert_protocol_2_stream(frames)
    ids = [f["call"] for f in of(frames, "tool_call")]
    assert len(ids) == 2 and all(call.startswith("call_") and len(call) == 13 for call in ids)  # Ollama's own ids
    assert call_story(frames, ids[0])[:2] == ("order_status", '{"number": 7}')
    assert call_story(frames, ids[1])[:2] == ("weather", '{"city": "Paris"}')
    assert_done(call_story(frames, ids[0])[2], "Order 7 has shipped.")
    assert texts(frames) == "Shipped, and sunny."
    follow_up = upstream.requests[1].body["messages"]
    assert [c["id"] for c in follow_up[1]["tool_calls"]] == ids
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages(upstream.requests[1].body)] == [
        (ids[0], "Order 7 has shipped."),
        (ids[1], "Sunny in Paris."),
    ]
    await socket.close()


@pytest.mark.parametrize("name", ["delete_everything", "purge_cache"], ids=["unknown", "staff-only"])
async def test_a_tool_the_client_was_not_offered_is_refused_and_the_stream_goes_on(upstream, name):
    upstream.then(
        round_with_calls(ToolCallScript(name, {}, id="call_x")),
        Script(tokens=["I cannot do that."]),
    )
    socket = await open_socket()
    await socket.send(prompt("Delete everything."))

    frames = await socket.stream_to_end()

    assert_protocol_2_stream(frames)
    called, _, result = call_story(frames, "call_x", ran=False)
    message = assert_failed(result, "tool_not_offered")
    assert called == name and probe.ran == []  # authorisation is checked when the call runs, not only when offered
    assert texts(frames) == "I cannot do that." and frames[-1]["finish_reason"] == "stop"
    (told,) = tool_messages(upstream.requests[1].body)
    assert told["tool_call_id"] == "call_x" and message in told["content"]
    await socket.close()


@pytest.mark.parametrize(
    "arguments",
    ['{"number": "seven"}', '{"number": 7', "[7]", '{"number": 7, "admin": true}', '{"numbr": 7}'],
    ids=["wrong-type", "not-json", "not-an-object", "extra-field", "missing-field"],
)
async def test_arguments_that_fail_validation_give_invalid_arguments_and_the_tool_does_not_run(upstream, arguments):
    upstream.then(
        round_with_calls(ToolCallScript("order_status", arguments, id="call_bad")),
        Script(tokens=["Which order?"]),
    )
    socket = await open_socket()
    await socket.send(prompt("Where is my order?"))

    frames = await socket.stream_to_end()

    _, written, result = call_story(frames, "call_bad", ran=False)
    assert written == arguments  # the page shows what the model wrote
    message = assert_failed(result, "invalid_arguments")
    assert probe.ran == [] and texts(frames) == "Which order?"
    (told,) = tool_messages(upstream.requests[1].body)
    assert told["tool_call_id"] == "call_bad" and message in told["content"]
    await socket.close()


async def test_arguments_over_the_size_limit_are_invalid(upstream, settings):
    settings.STREAMING_TOOL_ARGUMENT_CHARS = 40
    long = json.dumps({"city": "P" * 100})
    upstream.then(round_with_calls(ToolCallScript("weather", long, id="call_long")), Script(tokens=["Hm."]))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert_failed(call_story(frames, "call_long", ran=False)[2], "invalid_arguments")
    assert probe.ran == []
    await socket.close()


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [("explode", {}, "The tool failed."), ("refuse", {"number": 7}, "There is no such order.")],
    ids=["raises", "tool-error"],
)
async def test_a_tool_that_raises_gives_tool_failed_with_a_fixed_or_its_own_message(upstream, name, arguments, message):
    upstream.then(round_with_calls(ToolCallScript(name, arguments, id="call_f")), Script(tokens=["Sorry."]))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert assert_failed(call_story(frames, "call_f")[2], "tool_failed") == message
    assert texts(frames) == "Sorry." and frames[-1]["finish_reason"] == "stop"
    (told,) = tool_messages(upstream.requests[1].body)
    assert message in told["content"]
    (row,) = await calls_of(frames[0]["stream"])
    assert (row.status, row.error_code, row.error_message) == ("failed", "tool_failed", message)
    assert SECRET not in json.dumps(frames) + json.dumps(upstream.requests[1].body) + row.error_message + row.result
    await socket.close()


@pytest.mark.parametrize("name", ["wait_async", "wait_sync"])
async def test_a_tool_that_takes_too_long_gives_tool_timeout_and_the_stream_goes_on(upstream, settings, name):
    settings.STREAMING_TOOL_SECONDS = 0.3
    upstream.then(round_with_calls(ToolCallScript(name, {}, id="call_slow")), Script(tokens=["It timed out."]))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    result = call_story(frames, "call_slow")[2]
    assert_failed(result, "tool_timeout")
    assert 250 <= result["duration_ms"] < 5000
    assert texts(frames) == "It timed out." and frames[-1]["finish_reason"] == "stop"
    if name == "wait_async":
        assert probe.cancelled.is_set()  # an async tool past its time is cancelled, not left running
    else:
        assert not probe.sync_finished.is_set()  # a sync one cannot be stopped: its result will be discarded
    (row,) = await calls_of(frames[0]["stream"])
    assert (row.status, row.error_code) == ("failed", "tool_timeout")
    await socket.close()


async def test_calls_over_the_per_round_cap_are_not_run(upstream, settings):
    settings.STREAMING_TOOL_CALLS_PER_ROUND = 1
    upstream.then(round_with_calls(ORDER, WEATHER), Script(tokens=["One at a time."]))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert_done(call_story(frames, "call_order")[2], "Order 7 has shipped.")
    assert_failed(call_story(frames, "call_weather", ran=False)[2], "too_many_calls")
    assert [name for name, _ in probe.ran] == ["order_status"]
    assert [m["tool_call_id"] for m in tool_messages(upstream.requests[1].body)] == ["call_order", "call_weather"]
    await socket.close()


@pytest.mark.parametrize("rounds", [1, 2])
async def test_after_the_round_limit_one_last_request_with_tool_choice_none_asks_for_the_answer(
    upstream, settings, rounds
):
    settings.STREAMING_MAX_TOOL_ROUNDS = rounds
    asking = [round_with_calls(ToolCallScript("order_status", {"number": n}, id=f"call_{n}")) for n in range(rounds)]
    upstream.then(*asking, Script(tokens=["Enough", " lookups."]))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert len(upstream.requests) == rounds + 1
    assert [r.body.get("tool_choice") for r in upstream.requests][-1] == "none"
    assert all(r.body.get("tool_choice") in (None, "auto") for r in upstream.requests[:-1])
    assert len(probe.ran) == rounds and len(of(frames, "tool_result")) == rounds
    assert texts(frames) == "Enough lookups." and frames[-1]["finish_reason"] == "stop"
    await socket.close()


async def test_a_model_that_asks_for_a_tool_after_the_last_round_gets_no_more_rounds(upstream, settings):
    settings.STREAMING_MAX_TOOL_ROUNDS = 1
    # A server that ignores tool_choice="none" and keeps asking: the call must not run and the stream must end.
    upstream.then(round_with_calls(ORDER), round_with_calls(ToolCallScript("order_status", {"number": 8}, id="call_8")))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert frames[-1]["type"] == "done"
    assert len(upstream.requests) == 2 and upstream.requests[1].body["tool_choice"] == "none"
    assert [name for name, _ in probe.ran] == ["order_status"]
    if of(frames, "tool_call")[-1]["call"] == "call_8":  # if the page was shown the call, it is shown refused
        assert call_story(frames, "call_8", ran=False)[2]["status"] == "failed"
    await asyncio.sleep(0.2)
    assert len(upstream.requests) == 2
    await socket.close()


async def test_cancel_during_an_async_tool_cancels_it_and_the_stream_ends_cancelled(upstream):
    upstream.then(round_with_calls(ToolCallScript("wait_async", {}, id="call_wait")), Script(tokens=["never"]))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await receive_until(socket, lambda frames: frames and frames[-1]["type"] == "tool_running")
    await asyncio.wait_for(probe.started.wait(), timeout=1)

    await socket.send({"type": "cancel", "stream": start["stream"]})
    done = await socket.receive()

    assert done["type"] == "done" and done["finish_reason"] == "cancelled"
    await asyncio.wait_for(probe.cancelled.wait(), timeout=1)  # the tool itself saw CancelledError
    assert await socket.nothing_received()  # no tool_result: the page shows the call as stopped
    assert len(upstream.requests) == 1
    row = await exchange(start["stream"])
    assert (row.status, row.finish_reason) == ("cancelled", "cancelled")
    (call,) = await calls_of(start["stream"])
    assert (call.call_id, call.name, call.status) == ("call_wait", "wait_async", "stopped")
    await socket.close()


async def test_cancel_during_a_sync_tool_stops_waiting_at_once_and_discards_its_result(upstream):
    upstream.then(round_with_calls(ToolCallScript("wait_sync", {}, id="call_wait")), Script(tokens=["never"]))
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    await receive_until(socket, lambda frames: frames and frames[-1]["type"] == "tool_running")
    assert await asyncio.to_thread(probe.sync_started.wait, 1)

    await socket.send({"type": "cancel", "stream": start["stream"]})
    done = await socket.receive(timeout=1)  # not after the tool's thread lets go

    assert done["type"] == "done" and done["finish_reason"] == "cancelled"
    assert not probe.sync_finished.is_set()
    probe.sync_release.set()
    assert await asyncio.to_thread(probe.sync_finished.wait, 2)
    assert await socket.nothing_received()  # the late result is discarded
    assert len(upstream.requests) == 1
    (call,) = await calls_of(start["stream"])
    assert (call.status, call.result) == ("stopped", "")
    assert (await exchange(start["stream"])).status == "cancelled"
    await socket.close()


async def test_a_calls_name_and_arguments_are_relayed_as_the_model_writes_them(upstream):
    fragments = ['{"ci', 'ty": "Pa', 'ris"}']
    call = ToolCallScript("weather", {"city": "Paris"}, id="call_weather", fragments=fragments)
    script = round_with_calls(call, pause_after=2)  # the name, the first fragment; then the model is slow
    upstream.then(script, Script(tokens=["Sunny."]))
    socket = await open_socket()
    await socket.send(prompt())
    await socket.receive()  # start

    live = await receive_until(socket, lambda frames: "".join(f.get("text", "") for f in frames) == fragments[0])

    assert (live[0]["type"], live[0]["name"]) == ("tool_call", "weather")
    assert of(live, "tool_running", "tool_result") == []  # still being written
    script.proceed.set()
    rest = await socket.stream_to_end()
    assert call_story(live + rest, "call_weather")[1] == '{"city": "Paris"}'
    await socket.close()


async def test_every_socket_of_the_client_sees_the_reasoning_and_the_calls(upstream):
    upstream.then(
        Script(server="deepseek", reasoning=REASONING, tool_calls=[ORDER]),
        Script(server="deepseek", reasoning=["Shipped."], tokens=["It", " shipped."]),
    )
    session = await database_sync_to_async(new_session)()
    asker, other_tab = await open_socket(session_key=session), await open_socket(session_key=session)
    await asker.send(prompt())

    seen_by_asker, seen_by_other_tab = await asker.stream_to_end(), await other_tab.stream_to_end()

    assert seen_by_asker == seen_by_other_tab
    assert reasoning_text(seen_by_asker) == "".join(REASONING) + "Shipped."
    assert_done(call_story(seen_by_asker, "call_order")[2], "Order 7 has shipped.")
    await asker.close()
    await other_tab.close()


@pytest.mark.parametrize("how", ["the-connection-drops", "cancel"])
async def test_a_stream_cut_while_a_call_is_written_ends_with_the_call_stopped_and_not_run(upstream, how):
    fragments = ['{"ci', 'ty": "Pa', 'ris"}']
    call = ToolCallScript("weather", {"city": "Paris"}, id="call_weather", fragments=fragments)
    cut = {"drop_after": 3} if how == "the-connection-drops" else {"hang_after": 3}
    upstream.then(round_with_calls(call, **cut))  # the name and two fragments, then nothing more
    socket = await open_socket()
    await socket.send(prompt())
    start = await socket.receive()
    written = "".join(fragments[:2])
    frames = [start, *await receive_until(socket, lambda frames: "".join(f.get("text", "") for f in frames) == written)]
    if how == "cancel":
        await socket.send({"type": "cancel", "stream": start["stream"]})

    frames += await socket.stream_to_end()

    end = frames[-1]
    assert (end["type"], end.get("code") or end.get("finish_reason")) == (
        ("error", "upstream_unavailable") if how == "the-connection-drops" else ("done", "cancelled")
    )
    assert of(frames, "tool_running", "tool_result") == [] and probe.ran == []
    (row,) = await calls_of(start["stream"])  # logged, and shown stopped, as the page showed it
    assert (row.call_id, row.name, row.status) == ("call_weather", "weather", "stopped")
    assert row.arguments == written  # as far as it was written
    await socket.close()


async def test_the_time_limit_during_a_tool_ends_the_stream_and_stops_the_call(upstream, settings):
    settings.STREAMING_MAX_SECONDS = 0.5
    upstream.then(round_with_calls(ToolCallScript("wait_async", {}, id="call_w")), Script(tokens=["never"]))
    socket = await open_socket()
    await socket.send(prompt())

    frames = await socket.stream_to_end()

    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "time_limit"
    assert of(frames, "tool_result") == []
    await asyncio.wait_for(probe.cancelled.wait(), timeout=1)
    assert len(upstream.requests) == 1
    (row,) = await calls_of(frames[0]["stream"])
    assert row.status == "stopped"
    assert (await exchange(frames[0]["stream"])).status == "interrupted"
    await socket.close()


@pytest.mark.parametrize("server", ["deepseek", "vllm"])
async def test_a_later_turn_sends_the_earlier_calls_and_results_the_way_the_api_expects(upstream, server):
    upstream.then(
        Script(server=server, reasoning=["Look it up."], tokens=["Let me check."], tool_calls=[ORDER]),
        Script(server=server, reasoning=["Got it."], tokens=["It has shipped."]),
        Script(tokens=["You are welcome."]),
    )
    socket = await open_socket()
    await socket.send(prompt("Where is order 7?"))
    first = await socket.stream_to_end()

    await socket.send(prompt("Thanks!", request="r2", conversation=first[0]["conversation"]))
    await socket.stream_to_end()

    call = {"id": "call_order", "type": "function", "function": {"name": "order_status", "arguments": '{"number": 7}'}}
    echoed = {"reasoning_content": "Look it up."} if server == "deepseek" else {}
    assert upstream.requests[2].body["messages"] == [
        {"role": "user", "content": "Where is order 7?"},
        # DeepSeek refuses a conversation whose tool calls lack the reasoning that led to them; only that goes back.
        {"role": "assistant", "content": "Let me check.", "tool_calls": [call], **echoed},
        {"role": "tool", "tool_call_id": "call_order", "content": "Order 7 has shipped."},
        {"role": "assistant", "content": "It has shipped."},
        {"role": "user", "content": "Thanks!"},
    ]
    await socket.close()


# -- resume --------------------------------------------------------------------------------------------------------


async def test_resume_during_reasoning_replays_the_frames_after_pos_then_follows_live(upstream):
    script = Script(server="deepseek", reasoning=REASONING, tokens=ANSWER, pause_after=3)
    upstream.then(script)
    session = await database_sync_to_async(new_session)()
    first = await open_socket(session_key=session)
    await first.send(prompt())
    start = await first.receive()
    seen = await receive_until(first, lambda frames: reasoning_text(frames) == "".join(REASONING[:3]))
    assert upstream.requests[0].paused.is_set()
    after = seen[0]["pos"]  # as a page that got the first reasoning frame and lost the rest

    second = await open_socket(session_key=session)
    await second.send({"type": "resume", "stream": start["stream"], "after": 0, "pos": after})
    replayed = [await second.receive() for _ in seen[1:]]
    assert replayed == seen[1:]  # frame for frame, in their order
    script.proceed.set()
    live = await second.stream_to_end()
    rest = await first.stream_to_end()

    assert live == rest
    assert reasoning_text(seen + rest) == "".join(REASONING) and texts(rest) == "".join(ANSWER)
    assert_protocol_2_stream([start, *seen, *rest])
    await first.close()
    await second.close()


@pytest.mark.parametrize("from_start", [True, False], ids=["from-pos-0", "from-the-tool-call"])
async def test_resume_during_a_tool_call_shows_the_call_as_it_stands_then_its_result(upstream, from_start):
    upstream.then(
        Script(server="vllm", reasoning=["Wait for it."], tool_calls=[ToolCallScript("wait_async", {}, id="call_w")]),
        Script(server="vllm", tokens=["Done", " waiting."]),
    )
    session = await database_sync_to_async(new_session)()
    first = await open_socket(session_key=session)
    await first.send(prompt())
    start = await first.receive()
    seen = await receive_until(first, lambda frames: frames and frames[-1]["type"] == "tool_running")
    after = 0 if from_start else of(seen, "tool_call")[0]["pos"]

    second = await open_socket(session_key=session)
    await second.send({"type": "resume", "stream": start["stream"], "after": 0, "pos": after})
    expected = [f for f in seen if f["pos"] > after]
    replayed = [await second.receive() for _ in expected]
    assert replayed == expected
    assert replayed[-1]["type"] == "tool_running"  # the call is running, and the page that resumed knows it
    probe.release.set()
    live = await second.stream_to_end()
    rest = await first.stream_to_end()

    assert live == rest
    assert_done(call_story(seen + rest, "call_w")[2], "finished")
    assert texts(rest) == "Done waiting."
    await first.close()
    await second.close()


@pytest.mark.parametrize("source", ["record", "log"])
@pytest.mark.parametrize("from_call", [False, True], ids=["from-pos-0", "from-the-first-call"])
async def test_an_ended_stream_with_reasoning_and_calls_replays_frame_for_frame(upstream, settings, source, from_call):
    upstream.then(
        Script(server="openrouter", reasoning=REASONING, tokens=["Let me check."], tool_calls=[ORDER, WEATHER]),
        Script(server="openrouter", tool_calls=[ToolCallScript("explode", {}, id="call_boom")]),
        Script(server="openrouter", reasoning=["Done."], tokens=ANSWER),
    )
    socket = await open_socket()
    await socket.send(prompt())
    frames = await socket.stream_to_end()
    if source == "log":
        settings.STREAMING_REPLAY_SECONDS = 601  # a fresh, empty record: as after its TTL
    kept = of(frames, *KEPT_KINDS)
    after = of(frames, "tool_call")[0]["pos"] if from_call else 0

    await socket.send({"type": "resume", "stream": frames[0]["stream"], "after": 0, "pos": after})
    replayed = await socket.stream_to_end()

    assert replayed == [f for f in kept if f["pos"] > after] + [frames[-1]]
    await socket.close()


# -- the log -------------------------------------------------------------------------------------------------------


async def test_the_log_keeps_every_call_in_order_with_its_arguments_result_error_and_duration(upstream):
    upstream.then(
        Script(server="openrouter", reasoning=["Two things."], tokens=["Checking."], tool_calls=[ORDER, WEATHER]),
        Script(server="openrouter", tool_calls=[ToolCallScript("refuse", {"number": 9}, id="call_refuse")]),
        Script(server="openrouter", tokens=["Order 7 shipped; 9 does not exist."]),
    )
    socket = await open_socket()
    await socket.send(prompt("Orders 7 and 9, and Paris?"))

    frames = await socket.stream_to_end()

    stream = frames[0]["stream"]
    rows = await calls_of(stream)
    assert [(r.round, r.call_id, r.name, r.arguments, r.status) for r in rows] == [
        (1, "call_order", "order_status", '{"number": 7}', "done"),
        (1, "call_weather", "weather", '{"city": "Paris"}', "done"),
        (2, "call_refuse", "refuse", '{"number": 9}', "failed"),
    ]
    assert [r.position for r in rows] == sorted({r.position for r in rows})
    assert [r.result for r in rows] == ["Order 7 has shipped.", "Sunny in Paris.", ""]
    assert [(r.error_code, r.error_message) for r in rows] == [
        ("", ""),
        ("", ""),
        ("tool_failed", "There is no such order."),
    ]
    results = {f["call"]: f for f in of(frames, "tool_result")}
    assert [r.duration_ms for r in rows] == [results[r.call_id]["duration_ms"] for r in rows]
    # Where each call sits in the answer and the reasoning: after the text written before it ("Checking.", "Two
    # things."); the second round wrote nothing before its call.
    assert [(r.answer_offset, r.reasoning_offset) for r in rows] == [(len("Checking."), len("Two things."))] * 3
    row = await exchange(stream)
    assert (row.reasoning, row.answer) == ("Two things.", "Checking.Order 7 shipped; 9 does not exist.")
    assert row.first_output_ms <= row.ttft_ms and row.status == "completed"
    await socket.close()


async def test_first_output_counts_a_tool_call_while_ttft_waits_for_the_answer_text(upstream):
    upstream.then(round_with_calls(ToolCallScript("wait_async", {}, id="call_w")), Script(tokens=["Here."]))
    socket = await open_socket()
    await socket.send(prompt())
    await receive_until(socket, lambda frames: frames and frames[-1]["type"] == "tool_running")
    await asyncio.sleep(0.3)
    probe.release.set()

    done = (await socket.stream_to_end())[-1]

    assert done["ttft_ms"] >= done["first_output_ms"] + 250
    await socket.close()


async def test_the_conversation_api_gives_the_parts_of_each_answer_in_order(upstream):
    upstream.then(
        Script(server="deepseek", reasoning=["Look it up."], tokens=["Let me check."], tool_calls=[ORDER]),
        Script(server="deepseek", tokens=["It has <b>shipped</b>."]),
    )
    session = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session)
    await socket.send(prompt("Where is order 7?"))
    frames = await socket.stream_to_end()

    cookie = f"sessionid={session}".encode()
    api = HttpCommunicator(
        application,
        "GET",
        f"/api/conversations/{frames[0]['conversation']}/",
        headers=[(b"host", b"localhost"), (b"cookie", cookie)],
    )
    response = await api.get_response()

    assert response["status"] == 200
    (answer,) = json.loads(response["body"])["exchanges"]
    assert answer["reasoning"] == "Look it up." and answer["first_output_ms"] == frames[-1]["first_output_ms"]
    result = of(frames, "tool_result")[0]
    assert answer["parts"] == [
        {"kind": "reasoning", "text": "Look it up."},
        {"kind": "text", "text": "Let me check."},
        {
            "kind": "tool",
            "call": "call_order",
            "name": "order_status",
            "arguments": '{"number": 7}',
            "status": "done",
            "result": "Order 7 has shipped.",
            "error": None,
            "duration_ms": result["duration_ms"],
        },
        {"kind": "text", "text": "It has <b>shipped</b>."},
    ]
    assert "".join(p["text"] for p in answer["parts"] if p["kind"] == "text") == answer["answer"]
    await socket.close()
