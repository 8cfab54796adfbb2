"""How much of a conversation the model is sent: the newest whole turns within `STREAMING_HISTORY_CHARS`."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from streaming.errors import PromptTooLong
from streaming.models import Conversation, Exchange
from streaming.relay.history import fewer_turns, fit_history, turn_count
from tests.conftest import new_session, open_socket, prompt
from tests.fake_openai import Script


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


SYSTEM = {"role": "system", "content": "Be brief."}  # 9 characters
TOOL_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    ],
}
TOOL_RESULT = {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}


def test_everything_is_sent_when_it_fits():
    turns = [user("one"), assistant("1"), user("two"), assistant("2")]
    assert fit_history(system="Be brief.", turns=turns, prompt="three", budget_chars=1000) == [
        SYSTEM,
        *turns,
        user("three"),
    ]


def test_no_system_instruction_means_no_system_message():
    assert fit_history(system=None, turns=[], prompt="hi", budget_chars=10) == [user("hi")]
    assert fit_history(system="", turns=[], prompt="hi", budget_chars=10) == [user("hi")]


def test_the_oldest_whole_turns_are_dropped_and_the_newest_kept():
    turns = [user("aaaa"), assistant("AAAA"), user("bbbb"), assistant("BBBB"), user("cccc"), assistant("CCCC")]
    # System 9 + prompt 4 + the two newest turns (8 each) = 29; one more character would not take half a turn.
    for budget in (29, 36):
        assert fit_history(system="Be brief.", turns=turns, prompt="next", budget_chars=budget) == [
            SYSTEM,
            user("bbbb"),
            assistant("BBBB"),
            user("cccc"),
            assistant("CCCC"),
            user("next"),
        ]


def test_a_turn_too_long_to_fit_ends_the_history_even_if_older_ones_would_fit():
    turns = [user("old"), assistant("old"), user("x" * 50), assistant("long"), user("new"), assistant("new")]
    assert fit_history(system=None, turns=turns, prompt="p", budget_chars=20) == [
        user("new"),
        assistant("new"),
        user("p"),
    ]


def test_a_turn_with_tool_calls_is_kept_or_dropped_whole():
    tool_turn = [user("Weather?"), TOOL_CALL, TOOL_RESULT, assistant("Sunny.")]
    turns = [*tool_turn, user("Thanks"), assistant("Welcome")]
    # Enough for every message's text, but a tool call counts as its JSON, and the turn holding it does not fit:
    # it goes whole, so no tool result is left without its call.
    texts = len("Weather?") + len("18 C") + len("Sunny.") + len("Thanks") + len("Welcome") + len("ok")
    assert fit_history(system=None, turns=turns, prompt="ok", budget_chars=texts + 20) == [
        user("Thanks"),
        assistant("Welcome"),
        user("ok"),
    ]
    assert fit_history(system=None, turns=turns, prompt="ok", budget_chars=1000) == [*turns, user("ok")]


def test_a_system_instruction_and_prompt_longer_than_the_budget_are_refused():
    assert fit_history(system="Be brief.", turns=[], prompt="x" * 11, budget_chars=20) == [SYSTEM, user("x" * 11)]
    with pytest.raises(PromptTooLong) as refused:
        fit_history(system="Be brief.", turns=[user("a"), assistant("b")], prompt="x" * 12, budget_chars=20)
    assert refused.value.code == "prompt_too_long" and refused.value.retryable is False


def test_drop_drops_that_many_more_of_the_oldest_kept_turns():
    turns = [user("a"), assistant("A"), user("b"), assistant("B"), user("c"), assistant("C")]
    assert fit_history(system="Be brief.", turns=turns, prompt="d", budget_chars=1000, drop=2) == [
        SYSTEM,
        user("c"),
        assistant("C"),
        user("d"),
    ]
    assert fit_history(system="Be brief.", turns=turns, prompt="d", budget_chars=1000, drop=9) == [SYSTEM, user("d")]


def test_the_messages_sent_can_lose_their_oldest_turns_for_a_retry():
    tool_turn = [user("Weather?"), TOOL_CALL, TOOL_RESULT, assistant("Sunny.")]
    sent = fit_history(system="Be brief.", turns=[*tool_turn, user("b"), assistant("B")], prompt="c", budget_chars=1000)
    assert turn_count(sent) == 2
    assert fewer_turns(sent, drop=1) == [SYSTEM, user("b"), assistant("B"), user("c")]
    assert fewer_turns(sent, drop=5) == [SYSTEM, user("c")]
    assert turn_count(fewer_turns(sent, drop=5)) == 0
    assert fewer_turns([user("b"), assistant("B"), user("c")], drop=1) == [user("c")]


async def converse(socket, turns: int, *, system: str | None = None) -> str:
    """Send `turns` prompts in one conversation ("Question 1?" answered "Answer 1.", ...); returns its id."""
    conversation = None
    for i in range(1, turns + 1):
        fields = {"conversation": conversation} if conversation else {}
        if system:
            fields["system"] = system
        await socket.send(prompt(f"Question {i}?", request=f"q{i}", **fields))
        frames = await socket.stream_to_end()
        assert frames[-1]["type"] == "done"
        conversation = frames[0]["conversation"]
    return conversation


@pytest.mark.django_db(transaction=True)
async def test_a_long_conversation_sends_only_its_newest_turns_upstream(upstream, settings):
    # System 9 + the new prompt 11 + two turns of 21 ("Question n?" and "Answer n.") = 62: the third newest
    # turn does not fit in 70.
    settings.STREAMING_HISTORY_CHARS = 70
    upstream.then(*[Script(tokens=["Answer", f" {i}", "."]) for i in range(1, 5)])
    socket = await open_socket(session_key=await database_sync_to_async(new_session)())
    conversation = await converse(socket, 3, system="Be brief.")

    await socket.send(prompt("Question 4?", request="q4", conversation=conversation, system="Be brief."))
    frames = await socket.stream_to_end()

    assert frames[-1]["type"] == "done"
    assert upstream.requests[-1].body["messages"] == [
        SYSTEM,
        user("Question 2?"),
        assistant("Answer 2."),
        user("Question 3?"),
        assistant("Answer 3."),
        user("Question 4?"),
    ]
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_a_prompt_too_long_with_its_system_instruction_is_refused_before_anything_goes_upstream(
    upstream, settings
):
    settings.STREAMING_HISTORY_CHARS = 40
    socket = await open_socket()
    conversation = await converse(socket, 1)

    # Each fits the budget alone; together they do not.
    await socket.send(prompt("x" * 25, request="long", conversation=conversation, system="y" * 20))
    refused = await socket.receive()

    assert refused == {
        "type": "error",
        "code": "prompt_too_long",
        "message": "This message is too long for the model. Shorten it and send it again.",
        "retryable": False,
        "request": "long",
    }
    assert await socket.nothing_received()
    assert len(upstream.requests) == 1
    assert await Exchange.objects.acount() == 1
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_a_too_long_first_prompt_starts_no_conversation(upstream, settings):
    settings.STREAMING_HISTORY_CHARS = 40
    socket = await open_socket()

    await socket.send(prompt("x" * 41, request="long"))
    refused = await socket.receive()

    assert (refused["type"], refused["code"], refused["request"]) == ("error", "prompt_too_long", "long")
    assert upstream.requests == []
    assert await Exchange.objects.acount() == 0 and await Conversation.objects.acount() == 0
    await socket.close()


CONTEXT_EXCEEDED = {
    "error": {
        "message": "This model's maximum context length is 64 tokens. However, you requested 90 tokens.",
        "type": "invalid_request_error",
        "code": "context_length_exceeded",
    }
}


@pytest.mark.django_db(transaction=True)
async def test_a_model_whose_context_is_exceeded_is_asked_once_more_with_fewer_turns(upstream):
    upstream.then(*[Script(tokens=["Answer", f" {i}", "."]) for i in range(1, 5)])
    socket = await open_socket(session_key=await database_sync_to_async(new_session)())
    conversation = await converse(socket, 4)
    upstream.then(Script(status=400, error_body=CONTEXT_EXCEEDED), Script(tokens=["Fine", "."]))

    await socket.send(prompt("Question 5?", request="q5", conversation=conversation))
    frames = await socket.stream_to_end()

    assert frames[-1]["type"] == "done" and frames[-1]["finish_reason"] == "stop"
    refused, retried = upstream.requests[-2].body["messages"], upstream.requests[-1].body["messages"]
    assert len(refused) == 9 and retried == refused[4:]  # the two oldest of the four turns dropped
    assert (await Exchange.objects.aget(id=frames[0]["stream"])).answer == "Fine."
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_a_first_prompt_longer_than_the_models_context_is_prompt_too_long(upstream):
    upstream.then(Script(status=400, error_body=CONTEXT_EXCEEDED))
    socket = await open_socket()
    await socket.send(prompt("A very long question?"))

    frames = await socket.stream_to_end()

    assert frames[-1]["code"] == "prompt_too_long" and frames[-1]["retryable"] is False
    assert len(upstream.requests) == 1  # nothing to drop: no second request
    await socket.close()
