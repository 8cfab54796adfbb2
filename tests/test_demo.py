"""The demo model as the `openai` SDK sees it: reasoning, tool calls and answers, parsed from its real SSE stream.

Every test sends a real request through `openai.AsyncOpenAI` on the demo transport and asserts on the SDK's parsed
`ChatCompletionChunk`s, so the demo is held to the wire format a real provider speaks.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from streaming.provider.demo import DemoTransport, answer_to


def function(name: str, **properties: Any) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": list(properties)}
    return {
        "type": "function",
        "function": {"name": name, "description": f"The {name} tool.", "parameters": parameters},
    }


CURRENT_TIME = function("current_time")
SEARCH_HISTORY = function("search_history", query={"type": "string"})
TOOLS = [CURRENT_TIME, SEARCH_HISTORY]


@pytest.fixture(autouse=True)
def fast_demo(settings: Any) -> None:
    settings.STREAMING_DEMO_TOKENS_PER_SECOND = 100_000


def demo_client() -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="demo",
        base_url="http://demo.invalid/v1",
        http_client=openai.DefaultAsyncHttpxClient(transport=DemoTransport()),
        max_retries=0,
    )


async def ask(messages: list[dict[str, Any]], **options: Any) -> list[ChatCompletionChunk]:
    """Every chunk of the demo's streamed response to `messages`, as the SDK parses it."""
    async with demo_client() as client:
        stream = await client.chat.completions.create(
            model="demo", messages=messages, stream=True, stream_options={"include_usage": True}, **options
        )
        return [chunk async for chunk in stream]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def kinds(chunks: list[ChatCompletionChunk]) -> list[str]:
    """What each chunk with output carries, in order: "reasoning", "content" or "tool_call"."""
    seen = []
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            if getattr(delta, "reasoning_content", None):
                seen.append("reasoning")
            if delta.content:
                seen.append("content")
            if delta.tool_calls:
                seen.append("tool_call")
    return seen


def reasoning_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(getattr(c.delta, "reasoning_content", None) or "" for chunk in chunks for c in chunk.choices)


def content_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)


def finish_of(chunks: list[ChatCompletionChunk]) -> str | None:
    return next(c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason)


def calls_of(chunks: list[ChatCompletionChunk]) -> list[dict[str, Any]]:
    """The tool calls of the response, their fragments joined by `index` as a client assembles them."""
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for part in choice.delta.tool_calls or []:
                call = calls.setdefault(part.index, {"id": None, "name": "", "arguments": "", "fragments": 0})
                call["id"] = part.id or call["id"]
                if part.function is not None:
                    call["name"] += part.function.name or ""
                    call["arguments"] += part.function.arguments or ""
                    call["fragments"] += bool(part.function.arguments)
    return [calls[index] for index in sorted(calls)]


def answered(prompt: str, call: dict[str, Any], result: Any) -> list[dict[str, Any]]:
    """The conversation after the demo's `call`: the prompt, the call, and its result as the `tool` message."""
    function = {"name": call["name"], "arguments": call["arguments"]}
    return [
        *user(prompt),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call["id"], "type": "function", "function": function}],
        },
        {
            "role": "tool",
            "tool_call_id": call["id"],
            "content": result if isinstance(result, str) else json.dumps(result),
        },
    ]


async def test_the_reasoning_streams_word_by_word_before_the_answer():
    chunks = await ask(user("Why is the sky blue?"))

    seen = kinds(chunks)
    assert seen.count("reasoning") > 10 and "content" in seen
    assert seen.index("content") == seen.count("reasoning"), f"reasoning and answer are interleaved: {seen}"
    assert "Why is the sky blue?" in reasoning_of(chunks)
    assert content_of(chunks) == answer_to("Why is the sky blue?")
    assert finish_of(chunks) == "stop"


async def test_the_reasoning_counts_in_the_completion_tokens():
    chunks = await ask(user("Why is the sky blue?"))

    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens == len(kinds(chunks))
    assert usage.completion_tokens_details.reasoning_tokens == kinds(chunks).count("reasoning")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_a_time_prompt_with_tools_offered_streams_a_call_to_current_time():
    chunks = await ask(user("What time is it?"), tools=TOOLS)

    [call] = calls_of(chunks)
    assert call["name"] == "current_time" and call["id"].startswith("call_")
    assert json.loads(call["arguments"]) == {}
    assert finish_of(chunks) == "tool_calls"
    assert content_of(chunks) == ""
    seen = kinds(chunks)
    assert seen[0] == "reasoning" and set(seen[seen.index("tool_call") :]) == {"tool_call"}


async def test_a_call_opens_with_its_id_name_and_empty_arguments_as_openai_streams_it():
    chunks = await ask(user("What is the date today?"), tools=TOOLS)

    parts = [part for chunk in chunks for c in chunk.choices for part in c.delta.tool_calls or []]
    opening, *rest = parts
    assert opening.index == 0 and opening.type == "function" and opening.id is not None
    assert opening.function is not None and opening.function.name == "current_time"
    assert opening.function.arguments == ""
    assert rest and all(part.index == 0 and part.id is None and part.function.name is None for part in rest)


async def test_a_history_prompt_calls_search_history_with_the_prompts_keywords_in_fragments():
    chunks = await ask(user("What did we say about Python decorators earlier?"), tools=TOOLS)

    [call] = calls_of(chunks)
    assert call["name"] == "search_history"
    assert json.loads(call["arguments"]) == {"query": "python decorators"}
    assert call["fragments"] > 1
    assert finish_of(chunks) == "tool_calls"


async def test_a_history_prompt_of_stop_words_only_still_searches_for_something():
    chunks = await ask(user("What did we talk about before?"), tools=TOOLS)

    [call] = calls_of(chunks)
    assert call["name"] == "search_history"
    assert json.loads(call["arguments"])["query"].strip()


async def test_last_time_asks_about_history_not_the_clock():
    chunks = await ask(user("What did we discuss last time?"), tools=[CURRENT_TIME])

    assert calls_of(chunks) == []
    assert finish_of(chunks) == "stop"


@pytest.mark.parametrize(
    "options",
    [{}, {"tools": TOOLS, "tool_choice": "none"}, {"tools": [SEARCH_HISTORY]}],
    ids=["no tools", "tool choice none", "current_time not offered"],
)
async def test_a_time_prompt_is_answered_in_text_when_current_time_may_not_be_called(options):
    chunks = await ask(user("What time is it?"), **options)

    assert calls_of(chunks) == []
    assert content_of(chunks) == answer_to("What time is it?")
    assert finish_of(chunks) == "stop"


async def test_a_prompt_that_asks_for_no_tool_is_answered_in_text_with_tools_offered():
    chunks = await ask(user("Why is the sky blue?"), tools=TOOLS)

    assert calls_of(chunks) == []
    assert content_of(chunks) == answer_to("Why is the sky blue?")


async def test_the_follow_up_states_the_time_from_the_tool_result():
    prompt = "What time is it?"
    [call] = calls_of(await ask(user(prompt), tools=TOOLS))
    result = {"datetime": "2026-05-01T12:00:00+02:00", "timezone": "Europe/Paris"}

    chunks = await ask(answered(prompt, call, result), tools=TOOLS)

    assert calls_of(chunks) == []
    assert "2026-05-01T12:00:00+02:00" in content_of(chunks) and "Europe/Paris" in content_of(chunks)
    assert kinds(chunks)[0] == "reasoning"
    assert finish_of(chunks) == "stop"


async def test_the_follow_up_states_a_plain_text_time_result():
    prompt = "What time is it?"
    [call] = calls_of(await ask(user(prompt), tools=TOOLS))
    result = "2026-05-01T12:00:00+02:00, Friday, time zone Europe/Paris (CEST)"  # what the built-in tool returns

    chunks = await ask(answered(prompt, call, result), tools=TOOLS)

    assert result in content_of(chunks)


async def test_the_follow_up_counts_and_quotes_what_the_search_found():
    prompt = "What did we say about Python earlier?"
    [call] = calls_of(await ask(user(prompt), tools=TOOLS))
    found = [  # the shape the built-in tool returns
        {"conversation": "Python", "date": "2026-05-01", "prompt": f"Python question {number}", "answer": "…"}
        for number in range(1, 6)
    ]

    chunks = await ask(answered(prompt, call, found), tools=TOOLS)

    answer = content_of(chunks)
    assert "5 earlier exchanges" in answer
    assert all(f'"Python question {number}"' in answer for number in (1, 2, 3))
    assert "Python question 4" not in answer


async def test_the_follow_up_says_when_the_search_found_nothing():
    prompt = "What did we say about Python earlier?"
    [call] = calls_of(await ask(user(prompt), tools=TOOLS))

    chunks = await ask(answered(prompt, call, []), tools=TOOLS)

    assert "found no exchange" in content_of(chunks)


@pytest.mark.parametrize(
    "error",
    ["The tool took too long.", {"code": "tool_timeout", "message": "The tool took too long."}],
    ids=["message", "code and message"],
)
async def test_a_failed_call_is_reported_with_its_message(error):
    prompt = "What time is it?"
    [call] = calls_of(await ask(user(prompt), tools=TOOLS))

    chunks = await ask(answered(prompt, call, {"error": error}), tools=TOOLS)

    answer = content_of(chunks)
    assert "failed" in answer and "The tool took too long." in answer
    assert "right now" not in answer
    assert "failed" in reasoning_of(chunks)


async def test_max_tokens_cuts_reasoning_and_answer_and_finishes_with_length():
    chunks = await ask(user("Tell me about streaming"), max_tokens=30)

    assert finish_of(chunks) == "length"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == len(kinds(chunks)) == 30
    assert reasoning_of(chunks) and content_of(chunks).startswith('You asked: "Tell me about streaming"')


async def test_max_tokens_can_cut_a_call_short():
    chunks = await ask(user("What did we say about Python decorators earlier?"), tools=TOOLS, max_tokens=4)

    assert finish_of(chunks) == "length"
    assert len(kinds(chunks)) == 4
    [call] = calls_of(chunks)
    full = json.dumps({"query": "python decorators"})
    assert call["arguments"] != full and full.startswith(call["arguments"])


async def test_the_demo_keeps_no_response_to_retrieve_or_cancel_as_a_server_without_background_mode():
    async with demo_client() as client:
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve("resp_1")
        with pytest.raises(openai.NotFoundError):
            await client.responses.cancel("resp_1")
