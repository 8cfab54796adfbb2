"""OpenAI's Responses API (`STREAMING_OPENAI_API = "responses"`): the request made from the relay's chat messages, and
its typed events reduced to the same pieces a chat-completions chunk gives. Pure tests first, then the relay over a
real HTTP server speaking the Responses stream, with the real SDK."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from streaming.errors import UpstreamStreamError
from streaming.models import Exchange
from streaming.provider.pieces import Piece
from streaming.provider.responses import EventReader, input_of, request_body
from streaming.relay.tool_calls import CallFragment
from tests.conftest import open_socket, prompt
from tests.fake_openai import Script, ToolCallScript

HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What time is it?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"time": "12:00"}'},
    {"role": "assistant", "content": "Noon."},
    {"role": "user", "content": "Thanks!"},
]
TOOL = {"type": "function", "function": {"name": "current_time", "description": "Now.", "parameters": {}}}


def test_the_conversation_goes_as_instructions_and_input_items_with_its_tool_calls():
    instructions, items = input_of(HISTORY)
    assert instructions == "Be brief."
    assert items == [
        {"role": "user", "content": "What time is it?"},
        {"type": "function_call", "call_id": "call_1", "name": "current_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"time": "12:00"}'},
        {"role": "assistant", "content": "Noon."},
        {"role": "user", "content": "Thanks!"},
    ]


def test_a_reasoning_model_is_asked_for_summaries_and_sent_no_temperature_and_nothing_is_stored():
    common = {"messages": HISTORY[:2], "tools": [TOOL], "tool_choice": "none", "temperature": 0.3, "max_tokens": 50}
    reasoning = request_body(**common, reasoning=True)
    assert reasoning["reasoning"] == {"summary": "auto"} and "temperature" not in reasoning
    assert (reasoning["store"], reasoning["max_output_tokens"]) == (False, 50)
    assert reasoning["stream_options"] == {"include_obfuscation": False}
    assert reasoning["tools"] == [{"type": "function", "name": "current_time", "description": "Now.", "parameters": {}}]
    assert reasoning["tool_choice"] == "none"
    plain = request_body(**common, reasoning=False)
    assert plain["temperature"] == 0.3 and "reasoning" not in plain


def read_all(events: list[dict]) -> list[Piece]:
    reader = EventReader()
    return [piece for event in events if (piece := reader.read(event)) is not None]


def test_text_reasoning_summaries_and_a_function_call_become_the_pieces_of_a_chat_answer():
    pieces = read_all(
        [
            {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "status": "queued"}},
            {"type": "response.in_progress", "sequence_number": 1, "response": {"id": "resp_1"}},
            {"type": "response.reasoning_summary_part.added", "summary_index": 0},
            {"type": "response.reasoning_summary_text.delta", "delta": "Think."},
            {"type": "response.reasoning_summary_part.added", "summary_index": 1},
            {"type": "response.reasoning_summary_text.delta", "delta": "More."},
            {"type": "response.output_text.delta", "delta": "Hi"},
            {"type": "response.refusal.delta", "delta": " no"},
            {
                "type": "response.output_item.added",
                "output_index": 2,
                "item": {"type": "function_call", "call_id": "call_9", "name": "current_time", "arguments": ""},
            },
            {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{}"},
            {"type": "response.function_call_arguments.done", "output_index": 2, "arguments": "{}"},
            {
                "type": "response.completed",
                "response": {
                    "status": "completed",
                    "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12},
                },
            },
        ]
    )
    named, *pieces = pieces  # the response's id, once, where a worker taking over would re-attach
    assert (named.response, named.at) == ("resp_1", 0)
    assert [(p.reasoning, p.reasoning_field) for p in pieces[:3]] == [
        ("Think.", "reasoning_summary"),
        ("\n\n", "reasoning_summary"),
        ("More.", "reasoning_summary"),
    ]
    assert [p.text for p in pieces[3:5]] == ["Hi", " no"]
    assert pieces[5].calls == (CallFragment(index=2, id="call_9", name="current_time", arguments=""),)
    assert pieces[6].calls == (CallFragment(index=2, arguments="{}"),)
    assert pieces[7].finish_reason == "tool_calls"
    assert pieces[7].usage == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}


def test_a_reader_that_re_attached_after_a_call_began_still_finishes_with_the_calls_and_the_reasoning_items():
    # A worker taking a stream over reads the response from the middle: the call's opening and the reasoning item's
    # own event came before. The whole response at the end says both.
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAA"}
    output = [reasoning, {"type": "function_call", "call_id": "call_9", "name": "current_time", "arguments": "{}"}]
    pieces = read_all(
        [
            {"type": "response.function_call_arguments.delta", "sequence_number": 7, "output_index": 1, "delta": "}"},
            {"type": "response.completed", "sequence_number": 9, "response": {"status": "completed", "output": output}},
        ]
    )
    assert [piece.at for piece in pieces] == [7, 9]
    assert pieces[-1].finish_reason == "tool_calls"
    assert pieces[-1].items == (reasoning,)


@pytest.mark.parametrize(
    ("reason", "finish_reason"),
    [("max_output_tokens", "length"), ("content_filter", "content_filter"), ("something_new", "something_new")],
)
def test_an_incomplete_response_finishes_with_the_chat_reason_for_it(reason, finish_reason):
    event = {
        "type": "response.incomplete",
        "response": {"status": "incomplete", "incomplete_details": {"reason": reason}},
    }
    (piece,) = read_all([event])
    assert piece.finish_reason == finish_reason


def test_a_failed_response_and_an_error_event_are_errors_of_the_stream():
    with pytest.raises(UpstreamStreamError) as failed:
        read_all([{"type": "response.failed", "response": {"error": {"code": "server_error", "message": "boom"}}}])
    assert failed.value.error == {"code": "server_error", "message": "boom"}
    with pytest.raises(UpstreamStreamError) as error:
        read_all([{"type": "error", "code": "rate_limit_exceeded", "message": "slow down"}])
    assert error.value.error["code"] == "rate_limit_exceeded"


# -- the relay over the Responses stream ---------------------------------------------------------------------------


@pytest.fixture
def responses_api(upstream, settings):
    settings.STREAMING_OPENAI_API = "responses"
    return upstream


async def ask(**fields) -> list[dict]:
    socket = await open_socket()
    await socket.send(prompt("What time is it?", **fields))
    frames = await socket.stream_to_end()
    await socket.close()
    return frames


@pytest.mark.django_db(transaction=True)
async def test_an_answer_through_the_responses_api_streams_and_is_logged_as_through_chat(responses_api):
    responses_api.then(Script(tokens=["It", " is", " noon."]))
    frames = await ask(temperature=0.5)
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == "It is noon."
    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "stop"
    assert frames[-1]["usage"]["completion_tokens"] == 3
    (request,) = responses_api.requests
    assert request.path.endswith("/responses")
    assert request.body["input"] == [{"role": "user", "content": "What time is it?"}]
    assert request.body["store"] is False and request.body["temperature"] == 0.5
    row = await database_sync_to_async(Exchange.objects.get)()
    assert (row.status, row.answer, row.completion_tokens) == ("completed", "It is noon.", 3)


@pytest.mark.django_db(transaction=True)
async def test_a_reasoning_model_shows_its_summaries_before_its_answer(responses_api, settings):
    settings.STREAMING_REASONING_MODELS = ["fake-model"]
    responses_api.then(Script(reasoning=["The clock", " says noon."], tokens=["Noon."]))
    frames = await ask(temperature=0.5)
    kinds = [f["type"] for f in frames]
    assert kinds.index("reasoning") < kinds.index("delta")
    assert "".join(f["text"] for f in frames if f["type"] == "reasoning") == "The clock says noon."
    body = responses_api.requests[0].body
    assert body["reasoning"] == {"summary": "auto"} and "temperature" not in body
    row = await database_sync_to_async(Exchange.objects.get)()
    assert (row.reasoning, row.reasoning_field, row.answer) == ("The clock says noon.", "reasoning_summary", "Noon.")


@pytest.mark.django_db(transaction=True)
async def test_ready_names_the_models_that_set_their_own_temperature_on_this_api_only(upstream, settings):
    settings.STREAMING_REASONING_MODELS = ["fake-model-l"]  # a prefix: "fake-model-large"
    for api, own in [("chat", []), ("responses", ["fake-model-large"])]:
        settings.STREAMING_OPENAI_API = api
        socket = await open_socket(ready=False)
        assert (await socket.receive())["own_temperature"] == own
        await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_a_tool_call_round_goes_back_as_function_call_items_and_their_outputs(responses_api, settings):
    settings.STREAMING_TOOL_MODELS = ["fake-model"]
    responses_api.then(
        Script(tool_calls=[ToolCallScript(name="current_time", arguments={}, id="call_abc")]),
        Script(tokens=["Noon."]),
    )
    frames = await ask()
    kinds = [f["type"] for f in frames]
    assert {"tool_call", "tool_running", "tool_result"} <= set(kinds) and frames[-1]["type"] == "done"
    first, second = responses_api.requests
    assert [tool["name"] for tool in first.body["tools"]] == ["current_time", "search_history"]
    call, output = second.body["input"][1:3]
    assert call == {"type": "function_call", "call_id": "call_abc", "name": "current_time", "arguments": "{}"}
    assert (output["type"], output["call_id"]) == ("function_call_output", "call_abc")
    assert "time" in output["output"]


@pytest.mark.django_db(transaction=True)
async def test_an_incomplete_response_ends_as_length_and_a_failed_one_as_an_error(responses_api):
    responses_api.then(Script(tokens=["Cut"], finish_reason="length"))
    done = (await ask())[-1]
    assert (done["type"], done["finish_reason"]) == ("done", "length")
    responses_api.then(Script(tokens=["Half"], error_event={"code": "server_error", "message": "sk-secret broke"}))
    frames = await ask()
    assert (frames[-1]["type"], frames[-1]["code"]) == ("error", "upstream_error")
    assert "sk-secret" not in frames[-1]["message"]
    row = await database_sync_to_async(Exchange.objects.order_by("created").last)()
    assert (row.status, row.answer) == ("failed", "Half")


@pytest.mark.django_db(transaction=True)
async def test_a_reasoning_models_reasoning_goes_back_encrypted_before_its_calls_in_the_next_round(
    responses_api, settings
):
    """Not stored, the response's reasoning exists only as the encrypted item it streamed: the next tool round must
    send it back, before the calls it led to, or the model reasons from scratch."""
    settings.STREAMING_REASONING_MODELS = ["fake-model"]
    settings.STREAMING_TOOL_MODELS = ["fake-model"]
    responses_api.then(
        Script(reasoning=["I need the clock."], tool_calls=[ToolCallScript(name="current_time", id="call_t")]),
        Script(tokens=["Noon."]),
    )
    frames = await ask()
    assert frames[-1]["type"] == "done"
    first, second = responses_api.requests
    assert first.body["include"] == ["reasoning.encrypted_content"]
    reasoning, call = second.body["input"][1:3]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
    assert (call["type"], call["call_id"]) == ("function_call", "call_t")


@pytest.mark.django_db(transaction=True)
async def test_the_demo_model_speaks_the_responses_api_too_reasoning_a_call_and_its_answer(settings):
    """`make run` with `OPENAI_API=responses` and no key: the demo answers through the Responses path."""
    settings.STREAMING_OPENAI_API_KEY = ""
    settings.STREAMING_OPENAI_API = "responses"
    settings.STREAMING_DEMO_TOKENS_PER_SECOND = 100_000
    frames = await ask()  # "What time is it?"
    kinds = [frame["type"] for frame in frames]
    assert kinds[1] == "reasoning" and {"tool_call", "tool_result", "delta"} <= set(kinds), kinds
    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "stop"
    row = await database_sync_to_async(Exchange.objects.get)()
    assert (row.status, row.reasoning_field, row.demo) == ("completed", "reasoning_summary", True)
    assert row.answer and row.completion_tokens
