"""The built-in demo model: an in-process HTTP transport that answers like an OpenAI-compatible streaming endpoint,
through Chat Completions or, for `STREAMING_OPENAI_API = "responses"`, as the Responses API streams (`DemoResponse`).

It exists so that a new user sees streaming, reasoning and tool calls before configuring a key. Because it plugs in
below the `openai` client (as the transport of its HTTP client), a demo answer travels through the SDK's SSE parser,
`upstream`, the tool loop, the relay and the log exactly as a real one does.

What it writes is decided from the request body by pure functions (`reply_to`), apart from the bytes (`DemoAnswer`):
- it thinks briefly first, streamed as `delta.reasoning_content` (DeepSeek's shape);
- offered `current_time` and asked for the time or date, or offered `search_history` and asked about earlier
  conversations, it calls that tool the way OpenAI streams a call (unless `tool_choice` is "none");
- when the conversation ends with the `tool` messages of its calls, it answers from them;
- otherwise it writes `ANSWER`.
The matching is plain English keywords: a demo of the wire format, not of understanding. It writes a token per chunk
at `DEMO_TOKENS_PER_SECOND`, honours `max_tokens` (finishing with `length`), and reports usage, counting its reasoning
in the completion tokens as OpenAI does.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx2  # the HTTP library of the openai SDK; its transport interface is what we implement

from streaming.conf import app_settings

ANSWER = """You asked: "{prompt}"

This is the **demo model**, built into the app so that you can watch an answer stream before you configure a real \
one. Every word you see travelled the same path a real answer takes: from the model, through the `openai` client, \
across the relay and the channel layer, to every tab you have open.

A few things worth knowing:

- Each piece of text arrives as a `delta` frame with a sequence number, so a client can tell when it missed one.
- Press **Stop** and the server closes the request to the model at once; the partial answer is kept.
- Every exchange is recorded, with its timing and token counts, in the Django admin.

To talk to a real model, set the key before starting the server:

```bash
export OPENAI_API_KEY=sk-...
python manage.py runserver
```

Any OpenAI-compatible server works too: point `OPENAI_BASE_URL` at it."""

CURRENT_TIME = "current_time"
SEARCH_HISTORY = "search_history"
QUOTED_PROMPTS = 3  # of the exchanges a search found, how many the answer quotes
QUERY_WORDS = 6  # a search query is short, as a model writes one
QUERY_CHARS = 200  # for a prompt of stop words only, searched as it is; well within the tool's own limit

_TOKEN = re.compile(r"\s*\S{1,6}|\s+")
_WORD = re.compile(r"\w+")
_ASKS_HISTORY = re.compile(
    r"\b(?:earlier|before|previous(?:ly)?|last time|remember|recall|history|we (?:talked|discussed|spoke))\b", re.I
)
# "last time" asks about an earlier conversation, not about the clock.
_ASKS_TIME = re.compile(r"\b(?:(?<!last )time|date|today|clock|day is it|what day|which day|year is it)\b", re.I)
# Words that say nothing about what to search for: common English ones and those that ask for the search itself.
_STOP_WORDS = frozenset(
    """a about again all am an and any are as ask asked at be been before but by can could did do does earlier find
    for from had has have how i if in is it its just know last look me my no not of on or our please previous
    previously recall remember said say search so talk talked tell that the their them there these they this time to
    up us was we were what when where which who why will with would you your history discussed spoke conversation
    conversations chat chats discuss""".split()  # noqa: SIM905 (a hundred words read better as prose than as a list)
)
_TIME_KEYS = ("datetime", "iso", "now", "time", "local_time", "date")  # where a `current_time` result keeps the time
_ZONE_KEYS = ("timezone", "time_zone", "tz", "zone")
_PROMPT_KEYS = ("prompt", "prompt_text", "question", "content", "text")  # where a found exchange keeps its prompt


def tokens_of(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to it, the way a model emits them."""
    return _TOKEN.findall(text)


def answer_to(prompt: str) -> str:
    """The demo's answer to a prompt it has no tool for: what the demo is, with the prompt echoed."""
    return ANSWER.format(prompt=" ".join(prompt.split())[:200])


# What to write: pure functions of the request body.


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the demo makes: the tool's name and its arguments, the JSON text it streams."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A `tool` message the conversation ends with: the tool that answered, and its content (decoded if JSON)."""

    name: str
    content: Any


@dataclass(frozen=True, slots=True)
class Reply:
    """What the demo writes in one response: its reasoning, then either answer text or one tool call."""

    reasoning: str
    answer: str = ""
    call: ToolCall | None = None


def reply_to(body: dict[str, Any]) -> Reply:
    """The reply to a chat completion request: answer the results it asked for, call a tool it needs, or answer."""
    messages = body.get("messages") or []
    results = tool_results(messages)
    if results:
        return Reply(
            reasoning=" ".join(reasoning_after(result) for result in results),
            answer="\n\n".join(answer_from(result) for result in results),
        )
    prompt = last_prompt(messages)
    name = tool_to_call(body, prompt)
    if name is not None:
        return Reply(
            reasoning=reasoning_before(name, prompt), call=ToolCall(name, json.dumps(arguments_for(name, prompt)))
        )
    return Reply(reasoning=reasoning_about(prompt), answer=answer_to(prompt))


def text_of(content: Any) -> str:
    """A message's text, whether its content is a string, a list of content parts, or missing."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def last_prompt(messages: list[dict[str, Any]]) -> str:
    return next((text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")


def keywords_of(text: str) -> list[str]:
    """The words of a text that say what it is about: lower case, without stop words, each once, in order."""
    words = (word for word in _WORD.findall(text.lower()) if len(word) > 1 and word not in _STOP_WORDS)
    return list(dict.fromkeys(words))


def offered_tools(body: dict[str, Any]) -> set[str]:
    """The functions the request lets the model call: those in `tools`, none when `tool_choice` is "none"."""
    if body.get("tool_choice") == "none":
        return set()
    return {tool["function"]["name"] for tool in body.get("tools") or [] if tool.get("type") == "function"}


def tool_to_call(body: dict[str, Any], prompt: str) -> str | None:
    """The offered built-in tool that the prompt asks for, if any; a question about history wins over the clock."""
    offered = offered_tools(body)
    if SEARCH_HISTORY in offered and _ASKS_HISTORY.search(prompt):
        return SEARCH_HISTORY
    if CURRENT_TIME in offered and _ASKS_TIME.search(prompt):
        return CURRENT_TIME
    return None


def arguments_for(name: str, prompt: str) -> dict[str, Any]:
    """The arguments of a call: a search looks for the prompt's keywords; the clock needs nothing."""
    if name == SEARCH_HISTORY:
        return {"query": search_query(prompt)}
    return {}


def search_query(prompt: str) -> str:
    """The prompt's first keywords; the prompt itself when it has none, since the tool refuses an empty query."""
    return " ".join(keywords_of(prompt)[:QUERY_WORDS]) or " ".join(prompt.split())[:QUERY_CHARS]


def tool_results(messages: list[dict[str, Any]]) -> list[ToolResult]:
    """The `tool` messages at the end of the conversation, each named by the assistant call it answers."""
    names = {
        call.get("id"): (call.get("function") or {}).get("name", "tool")
        for message in messages
        for call in message.get("tool_calls") or []
    }
    trailing: list[ToolResult] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        name = names.get(message.get("tool_call_id"), "tool")
        trailing.append(ToolResult(name, decoded(text_of(message.get("content")))))
    return trailing[::-1]


def decoded(text: str) -> Any:
    """A tool's result as JSON when it is JSON, else as the text it is."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def failure_of(content: Any) -> str | None:
    """The message of a failed call's `{"error": ...}` result (a message or `{code, message}`); None if it worked."""
    error = content.get("error") if isinstance(content, dict) else None
    if not error:
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "unknown error")
    return str(error)


def found_prompts(content: Any) -> list[str] | None:
    """The prompts of the exchanges a search found: from a list of them, or an object holding one; None otherwise."""
    if isinstance(content, dict):
        content = next((value for value in content.values() if isinstance(value, list)), None)
    if not isinstance(content, list):
        return None
    return [prompt_of(item) for item in content]


def prompt_of(item: Any) -> str:
    if isinstance(item, dict):
        return text_of(next((item[key] for key in _PROMPT_KEYS if item.get(key)), ""))
    return str(item)


def shown(content: Any, limit: int = 300) -> str:
    """A result as one short line of text, for quoting it in a sentence."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reasoning_about(prompt: str) -> str:
    return (
        f'The person asks "{shown(prompt, 80)}", and I am only the demo model: I cannot really answer that, so I '
        "will explain what the demo shows and how to connect a real model."
    )


def reasoning_before(name: str, prompt: str) -> str:
    if name == CURRENT_TIME:
        return (
            f'The person asks "{shown(prompt, 80)}", and I cannot know the time by myself, so I will call the '
            f"{CURRENT_TIME} tool and answer from what it returns."
        )
    return (
        f'The person asks "{shown(prompt, 80)}", about an earlier conversation, so I will search their history for '
        f'"{shown(search_query(prompt), 80)}" with the {SEARCH_HISTORY} tool.'
    )


def reasoning_after(result: ToolResult) -> str:
    error = failure_of(result.content)
    if error is not None:
        return f'The {result.name} tool failed ("{shown(error, 80)}"), so I will tell the person it did not work.'
    prompts = found_prompts(result.content) if result.name == SEARCH_HISTORY else None
    if prompts is not None:
        return f"The {SEARCH_HISTORY} tool found {count_of(len(prompts))}, so I will tell the person what I found."
    return f"The {result.name} tool answered. I will tell the person what it returned."


def answer_from(result: ToolResult) -> str:
    """The answer a tool's result gives: the time, what a search found, or that the tool failed and why."""
    error = failure_of(result.content)
    if error is not None:
        return f"I tried the `{result.name}` tool, but it failed: {error}"
    if result.name == CURRENT_TIME:
        return time_answer(result.content)
    if result.name == SEARCH_HISTORY:
        return history_answer(result.content)
    return f"The `{result.name}` tool returned: {shown(result.content)}"


def time_answer(content: Any) -> str:
    if isinstance(content, dict):
        when = next((content[key] for key in _TIME_KEYS if content.get(key)), None)
        zone = next((content[key] for key in _ZONE_KEYS if content.get(key)), None)
        if when is not None:
            in_zone = f" ({zone})" if zone else ""
            return f"It is {when}{in_zone} right now, according to the `{CURRENT_TIME}` tool."
    return f"According to the `{CURRENT_TIME}` tool, it is now {shown(content)}."


def history_answer(content: Any) -> str:
    prompts = found_prompts(content)
    if prompts is None:
        return f"The `{SEARCH_HISTORY}` tool returned: {shown(content)}"
    if not prompts:
        return "I searched your earlier conversations and found no exchange about that."
    quoted = "\n".join(f'- "{shown(prompt, 100)}"' for prompt in prompts[:QUOTED_PROMPTS])
    more = len(prompts) - QUOTED_PROMPTS
    rest = f"\n\n…and {more} more." if more > 0 else ""
    return f"I found {count_of(len(prompts))} of yours. You asked:\n\n{quoted}{rest}"


def count_of(found: int) -> str:
    return f"{found} earlier exchange" if found == 1 else f"{found} earlier exchanges"


# How it is written: the reply as chunks, within the token budget.


@dataclass(frozen=True, slots=True)
class Script:
    """The deltas one response streams, a token each, with how many of them are reasoning, and how it ends."""

    deltas: list[dict[str, Any]]
    reasoning_tokens: int
    finish_reason: str


def script_of(reply: Reply, *, call_id: str, max_tokens: int | None) -> Script:
    """The reply's deltas within `max_tokens`, and its finish reason.

    Reasoning and output share the budget, as OpenAI counts them. Over budget, the reasoning gets at most half of it,
    so that a short answer still shows its start (a real model may spend all of it thinking).
    """
    reasoning = [{"content": None, "reasoning_content": token} for token in tokens_of(reply.reasoning)]
    output = output_deltas(reply, call_id)
    if max_tokens is None or len(reasoning) + len(output) <= max_tokens:
        return Script(reasoning + output, len(reasoning), "stop" if reply.call is None else "tool_calls")
    reasoning = reasoning[: max_tokens // 2]
    return Script(reasoning + output[: max_tokens - len(reasoning)], len(reasoning), "length")


def output_deltas(reply: Reply, call_id: str) -> list[dict[str, Any]]:
    """What follows the reasoning: the answer a token at a time, or the call as OpenAI streams one.

    A call opens with its id and name and empty arguments; the arguments follow in fragments, joined by `index`.
    """
    if reply.call is None:
        return [{"content": token} for token in tokens_of(reply.answer)]
    function = {"name": reply.call.name, "arguments": ""}
    opening = {"content": None, "tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": function}]}
    fragments = tokens_of(reply.call.arguments)
    return [opening, *({"tool_calls": [{"index": 0, "function": {"arguments": f}}]} for f in fragments)]


def prompt_tokens_of(body: dict[str, Any]) -> int:
    """What the request costs in tokens: every message's text and calls, and the tool definitions, as providers
    count them."""
    texts: Iterable[str] = (
        text_of(message.get("content")) + "".join(json.dumps(call) for call in message.get("tool_calls") or [])
        for message in body.get("messages") or []
    )
    tools = json.dumps(body["tools"]) if body.get("tools") else ""
    return sum(len(tokens_of(text)) for text in [*texts, tools])


class DemoTransport(httpx2.AsyncBaseTransport):
    """Answers every chat completion request, and every Responses API request, with a streamed demo reply. It keeps
    no response: one cannot be retrieved or cancelled (404), as from a server without background mode."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST" or not request.url.path.endswith(("/chat/completions", "/responses")):
            error = {"error": {"message": "The demo model keeps no responses.", "type": "invalid_request_error"}}
            return httpx2.Response(404, json=error, request=request)
        body = json.loads(await request.aread())
        responses = request.url.path.endswith("/responses")
        if responses:
            body = chat_body_of(body)
        script = script_of(
            reply_to(body),
            call_id=f"call_{uuid.uuid4().hex[:24]}",
            max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        )
        answer = DemoResponse if responses else DemoAnswer
        stream = answer(
            script=script, prompt_tokens=prompt_tokens_of(body), tokens_per_second=app_settings.DEMO_TOKENS_PER_SECOND
        )
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=stream, request=request)


def chat_body_of(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses API request as the chat completion request it stands for, so that one `reply_to` answers both:
    the instructions as the system message, function calls and their outputs as tool calls and `tool` messages."""
    messages: list[dict[str, Any]] = (
        [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
    )
    items = body.get("input") or []
    for item in [{"role": "user", "content": items}] if isinstance(items, str) else items:
        if item.get("type") == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif item.get("type") == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        elif "role" in item:
            messages.append({"role": item["role"], "content": item.get("content")})
    tools = [
        {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
        for tool in body.get("tools") or []
    ]
    chat = {"messages": messages, "tools": tools, "max_tokens": body.get("max_output_tokens")}
    if "tool_choice" in body:
        chat["tool_choice"] = body["tool_choice"]
    return chat


class DemoAnswer(httpx2.AsyncByteStream):
    """The SSE body of one demo response, paced like a model writing it."""

    def __init__(self, *, script: Script, prompt_tokens: int, tokens_per_second: int) -> None:
        self.script = script
        self.prompt_tokens = prompt_tokens
        self.interval = 1 / tokens_per_second
        self.id = f"chatcmpl-demo-{uuid.uuid4().hex[:12]}"
        self.created = int(time.time())

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._event({"role": "assistant", "content": ""})
        for delta in self.script.deltas:
            await asyncio.sleep(self.interval)
            yield self._event(delta)
        yield self._event({}, finish_reason=self.script.finish_reason)
        yield self._sse({**self._envelope(), "choices": [], "usage": self._usage()})
        yield b"data: [DONE]\n\n"

    def _usage(self) -> dict[str, Any]:
        completion = len(self.script.deltas)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "completion_tokens_details": {"reasoning_tokens": self.script.reasoning_tokens},
        }

    def _event(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return self._sse({**self._envelope(), "choices": [choice]})

    def _envelope(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": "demo"}

    @staticmethod
    def _sse(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()


class DemoResponse(DemoAnswer):
    """The same answer as the Responses API streams it: typed events, numbered, the reasoning as its summary, a call
    as a `function_call` item, and the end as `response.completed` (or `incomplete`, out of `max_output_tokens`)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.sequence = 0
        yield self._typed("response.created", response=self._response("in_progress"))
        for delta in self.script.deltas:
            await asyncio.sleep(self.interval)
            kind, fields = self._kind_of(delta)
            yield self._typed(kind, **fields)
        status = "incomplete" if self.script.finish_reason == "length" else "completed"
        usage = self._usage()
        response = self._response(status) | {
            "usage": {
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
            },
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        }
        yield self._typed(f"response.{status}", response=response)

    @staticmethod
    def _kind_of(delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if delta.get("reasoning_content"):
            return "response.reasoning_summary_text.delta", {
                "output_index": 0,
                "summary_index": 0,
                "delta": delta["reasoning_content"],
            }
        if calls := delta.get("tool_calls"):
            call = calls[0]
            if "id" in call:
                item = {
                    "type": "function_call",
                    "call_id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": "",
                }
                return "response.output_item.added", {"output_index": 1, "item": item}
            return "response.function_call_arguments.delta", {"output_index": 1, "delta": call["function"]["arguments"]}
        return "response.output_text.delta", {"output_index": 1, "content_index": 0, "delta": delta["content"]}

    def _response(self, status: str) -> dict[str, Any]:
        return {"id": self.id, "object": "response", "created_at": self.created, "status": status, "model": "demo"}

    def _typed(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode()
