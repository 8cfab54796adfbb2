"""A real HTTP server that speaks OpenAI's chat-completions and Responses streams, for the real `openai` client.

Each request takes the next `Script` from the queue (or the default one) and is recorded, with the moment its
connection closed, so tests can assert what the model was asked and that a cancelled answer's response really was
closed. Plain asyncio, HTTP/1.1 with keep-alive: nothing here is shared with the app's own code.

A script speaks as one of the OpenAI-compatible servers people use (`Script.server`): where each puts reasoning,
how it sends tool calls, and the small differences of its chunks (a role on every chunk, `content: null` or `""` or
absent, usage in the finish chunk or after it) are reproduced from the servers' own sources and recorded traffic,
cited on each `_Wire` class below. An answer is, in this order: reasoning chunks, content chunks (the `tokens`, given
literally, so an inline `<think>` block is just tokens), then tool-call chunks, then the finish chunk.

`POST /v1/responses` is answered from the same scripts in OpenAI's Responses stream (`_ResponsesWire`): typed events,
a reasoning summary item, a message item and a function-call item per tool call, then `response.completed` (or
`response.incomplete`, `response.failed`, `error`), so a test can drive the relay's other API with the same script.

Background mode (`"background": true`, which needs `store`): the answer is a stored response (`Background`, in
`FakeOpenAI.responses`) whose generation is a task of its own, paced and paused and hung by the script as a connection
would be, and going on whoever listens. The POST streams its events live; `drop_after` and `end_after` cut or end that
connection only, and neither they nor the client's leaving stop the generation. `GET /v1/responses/{id}?stream=true
&starting_after=N` streams the events after N and then the live ones up to the response's end (without `stream`, the
response as it is so far); `POST /v1/responses/{id}/cancel` stops it, ends its live streams where they are, and is
recorded (`cancelled`, `cancel_attempts`, `Background.cancelled_event`); `forget` lets it expire. None of these take a
script: a test queues only what the model says. So a test can kill the worker that asked and watch another re-attach.

Run alone (for daphne processes and the benchmark): `python -m tests.fake_openai --port 8001`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import re
import string
import time
import uuid
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


@dataclass
class ToolCallScript:
    """One tool call the model makes in a round: the tool's name and the arguments JSON the model writes."""

    name: str
    arguments: str | dict[str, Any] = "{}"  # a dict is sent as its JSON; a string as it is (it may be broken JSON)
    id: str | None = None  # the provider's call id; by default a fresh one in the server's own style
    fragments: list[str] | None = None  # how a fragmenting server splits the arguments (default: 6 characters each)

    @property
    def arguments_text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)

    def argument_fragments(self) -> list[str]:
        if self.fragments is not None:
            assert "".join(self.fragments) == self.arguments_text, "fragments must join up to the arguments"
            return self.fragments
        text = self.arguments_text
        return [text[i : i + 6] for i in range(0, len(text), 6)] or [""]


@dataclass
class Script:
    """What the server does with one request.

    `drop_after`, `hang_after`, `end_after` and `pause_after` count the chunks of the answer: reasoning, content and
    tool-call chunks alike (for a script of plain tokens, the tokens). On `/v1/responses` they count the delta events
    the same way (one per reasoning chunk, token and argument fragment); an item's opening and closing events go
    with the delta that follows them, so nothing at all is sent after the counted deltas.
    """

    # The answer text, chunk by chunk (default "Hello, world!", or none when the script makes tool calls).
    tokens: list[str] | None = None
    finish_reason: str | None = None  # default: "tool_calls" when the script makes tool calls, else "stop"
    status: int = 200
    interval: float = 0.0  # seconds between chunks
    drop_after: int | None = None  # cut the connection after this many chunks
    hang_after: int | None = None  # after this many chunks, send nothing more until the client closes
    usage: bool = True  # send the usage that include_usage asks for
    end_after: int | None = None  # after this many chunks, end the body cleanly with no finish chunk and no [DONE]
    error_event: dict[str, Any] | None = None  # after the chunks, send this as a mid-stream `{"error": ...}` event
    # How /v1/responses sends `error_event`: "failed" (a `response.failed`) or "error" (a top-level `error` event).
    error_type: str = "failed"
    error_body: dict[str, Any] | None = None  # the JSON body of a non-200 answer (OpenAI's error shape by default)
    error_headers: dict[str, str] = field(default_factory=dict)  # more headers of a non-200 answer (`Retry-After`)
    # The server whose wire shapes this answer has: one of `SERVERS`.
    server: str = "openai"
    # Reasoning chunks, sent before the content where this server puts reasoning (OpenAI's chat completions stream
    # none; on /v1/responses they are a reasoning summary, whatever the server).
    reasoning: list[str] = field(default_factory=list)
    # The tool calls of this round, after the content; index i is the call's `index` on the wire.
    tool_calls: list[ToolCallScript] = field(default_factory=list)
    # Alternate the chunks of several calls (call 0's name, call 1's name, call 0's arguments, ...) on a fragmenting
    # server, instead of sending each call whole before the next; a client must assemble them by `index`.
    interleave_tool_calls: bool = False
    # After this many chunks, wait until `proceed` is set (`paused`, and the request's, are set meanwhile).
    pause_after: int | None = None
    proceed: asyncio.Event = field(default_factory=asyncio.Event)
    paused: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.tokens is None:
            self.tokens = [] if self.tool_calls else ["Hello", ",", " world", "!"]

    @property
    def reasoning_shape(self) -> str:
        """The delta field the reasoning arrives in, for this script's server."""
        return _WIRES[self.server].reasoning_shape


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    tokens_sent: int = 0  # chunks of the answer sent (see `Script`)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    paused: asyncio.Event = field(default_factory=asyncio.Event)
    method: str = "POST"
    client_port: int = 0  # the port of the client's end of the connection

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def query(self) -> dict[str, str]:
        """The query string's parameters (a retrieve's `stream` and `starting_after`), as the client spelt them."""
        return dict(parse_qsl(urlsplit(self.path).query))

    @property
    def input(self) -> list[dict[str, Any]]:
        """A Responses request's input items (the SDK also allows a plain string here)."""
        return self.body.get("input", [])


class FakeOpenAI:
    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()
        self.default = Script()
        self.requests: list[Received] = []
        self.responses: dict[str, Background] = {}  # the stored responses of background mode, by id
        self.cancelled: list[str] = []  # the responses a cancel stopped, in order
        self.cancel_attempts: list[str] = []  # the id of every cancel asked for, whatever came of it
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.scripts.clear()
        self.default = Script()
        self.requests.clear()
        for background in self.responses.values():
            background.halt()  # a hung generation must not outlive its test
        self.responses.clear()
        self.cancelled.clear()
        self.cancel_attempts.clear()

    def forget(self, response_id: str) -> None:
        """The stored response expires: a retrieve or cancel of it is answered 404 from now on."""
        self.responses.pop(response_id).halt()

    def then(self, *scripts: Script) -> None:
        """Queue what the next requests get, in order (a tool-call round, then the answer round, ...).

        Reasoning on a server that streams none in chat completions (OpenAI's) is allowed here, since the Responses
        API streams it; a chat request that gets such a script is answered 400 instead.
        """
        for script in scripts:
            if script.server not in _WIRES:
                raise ValueError(f"unknown server {script.server!r}; one of {SERVERS}")
        self.scripts.extend(scripts)

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        tasks = [background.halt() for background in self.responses.values()]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request: Received | None = None
        collected = False
        try:
            while request := await _read_request(reader):
                request.client_port = writer.get_extra_info("peername")[1]
                self.requests.append(request)
                if not await self._route(request, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is shutting down
        except GeneratorExit:  # collected unfinished, its test's loop gone: nothing may be awaited any more
            collected = True
            raise
        finally:
            if request is not None:
                request.closed.set()
            writer.close()
            if not collected:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await writer.wait_closed()

    async def _route(self, request: Received, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """A stored response's retrieve or cancel takes no script (a test queues only what the model says); every
        other request takes the next one."""
        stored = re.fullmatch(r".*/responses/([^/]+)(/cancel)?", urlsplit(request.path).path)
        if stored is None:
            script = self.scripts.popleft() if self.scripts else self.default
            return await self._answer(script, request, reader, writer)
        response_id, cancel = stored.groups()
        if cancel and request.method == "POST":
            return await self._cancel(response_id, request, writer)
        if not cancel and request.method == "GET":
            return await self._retrieve(response_id, request, reader, writer)
        await _answer_json(writer, request, 404, _invalid(f"Invalid URL ({request.method} {request.path})"))
        return True

    async def _answer(
        self, script: Script, request: Received, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if script.status != 200:
            error = {"error": {"message": f"fake error {script.status}", "type": "fake", "code": None}}
            await _answer_json(writer, request, script.status, script.error_body or error, script.error_headers)
            return True
        if request.path.split("?", 1)[0].endswith("/responses"):
            if request.body.get("background"):
                return await self._start_background(script, request, reader, writer)
            stream = _ResponsesWire(request, script, number=len(self.requests)).answer()
        elif script.reasoning and _WIRES[script.server].reasoning_shape == "none":
            message = f"fake: {script.server} streams no reasoning in chat completions; pick another server"
            await _answer_json(writer, request, 400, {"error": {"message": message, "type": "fake", "code": None}})
            return True
        else:
            stream = _chat_stream(script, request)
        return await _stream(script, request, reader, writer, stream)

    async def _start_background(
        self, script: Script, request: Received, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Store the response and start its generation; stream it on this connection, or say it is queued."""
        if request.body.get("store") is False:
            message = "Background mode requires store=true: a background response must be stored to be retrieved."
            await _answer_json(writer, request, 400, _invalid(message, param="background"))
            return True
        background = Background(request, script, number=len(self.requests))
        self.responses[background.id] = background
        if not request.body.get("stream"):
            await _answer_json(writer, request, 200, background.snapshot())
            return True
        cut, end = background.events_through(script.drop_after), background.events_through(script.end_after)
        return await _relay(background, request, reader, writer, after=-1, cut=cut, end=end)

    async def _retrieve(
        self, response_id: str, request: Received, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """`GET /v1/responses/{id}`: the response as it is, or with `stream=true` its events after `starting_after`."""
        background = self.responses.get(response_id)
        if background is None:
            await _answer_json(writer, request, 404, _not_found(response_id))
            return True
        if request.query.get("stream", "").lower() not in {"true", "1"}:
            await _answer_json(writer, request, 200, background.snapshot())
            return True
        after = request.query.get("starting_after", "-1")
        if not after.lstrip("-").isdigit():
            message = f"Invalid 'starting_after': expected an integer, but got '{after}' instead."
            await _answer_json(writer, request, 400, _invalid(message, param="starting_after"))
            return True
        return await _relay(background, request, reader, writer, after=int(after))

    async def _cancel(self, response_id: str, request: Received, writer: asyncio.StreamWriter) -> bool:
        """`POST /v1/responses/{id}/cancel`: stop a response still going (again is no error); a finished one stays."""
        self.cancel_attempts.append(response_id)
        background = self.responses.get(response_id)
        if background is None:
            await _answer_json(writer, request, 404, _not_found(response_id))
            return True
        if background.status in _CANCEL_REFUSALS:
            await _answer_json(writer, request, 400, _invalid(_CANCEL_REFUSALS[background.status]))
            return True
        if not background.cancelled:
            background.cancel()
            self.cancelled.append(response_id)
        await _answer_json(writer, request, 200, background.snapshot())
        return True


# An answer as it goes on the wire: the events before it (not counted), its steps (each counted once: the events that
# lead up to one delta, and the delta), and the events after it, which end it.
_Answer = tuple[list[str], list[list[str]], list[str]]


async def _stream(
    script: Script, request: Received, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: _Answer
) -> bool:
    """Send an answer as the script says: paced, paused, cut, hung or ended early after so many steps."""
    opening, steps, closing = answer
    writer.write(_head(200, "text/event-stream", "Transfer-Encoding: chunked"))
    for event in opening:
        await _send(writer, event)
    for index, step in enumerate(steps):
        if script.drop_after is not None and index == script.drop_after:
            writer.transport.abort()
            return False
        if script.hang_after is not None and index == script.hang_after:
            await reader.read()  # returns once the client closes the connection
            return False
        if script.end_after is not None and index == script.end_after:
            break
        if script.pause_after is not None and index == script.pause_after:
            request.paused.set()
            script.paused.set()
            await script.proceed.wait()
        if script.interval:
            await asyncio.sleep(script.interval)
        for event in step:
            await _send(writer, event)
        request.tokens_sent += 1
    else:
        for event in closing:
            await _send(writer, event)
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    request.closed.set()
    return True


async def _answer_json(
    writer: asyncio.StreamWriter,
    request: Received,
    status: int,
    answer: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    body = json.dumps(answer)
    more = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    writer.write(_head(status, "application/json", f"{more}Content-Length: {len(body)}") + body.encode())
    await writer.drain()
    request.closed.set()


def _chat_stream(script: Script, request: Received) -> _Answer:
    """A chat-completions answer: the script's server's chunks, then its finish and usage and `[DONE]`."""
    wire = _WIRES[script.server](request.body.get("model", "fake-model"), reasoning=bool(script.reasoning))
    opening, events = wire.answer(script)
    steps = [[event] for event in events]
    if script.error_event is not None:
        return opening, steps, [f"data: {json.dumps({'error': script.error_event})}\n\n"]
    finish_reason = script.finish_reason or ("tool_calls" if script.tool_calls else "stop")
    usage = None
    if script.usage:
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in request.messages)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(events)}
        usage["total_tokens"] = prompt_tokens + len(events)
    return opening, steps, [*wire.closing(finish_reason, usage), "data: [DONE]\n\n"]


def _random(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(random.choices(alphabet, k=length))


class _Wire:
    """OpenAI's own chat-completions stream; each subclass is a server that sends it differently.

    OpenAI: a first chunk with the role (`content: ""`, `refusal: null`) or, when the answer opens with a tool call,
    the role on that call's first fragment with `content: null`; a call's first fragment has `index`, `id`, `type` and
    `function.name` with empty `arguments`, later fragments only `index` and `function.arguments`; the finish chunk has
    an empty delta; usage comes after it in a chunk with no choices. OpenAI's chat completions API streams no
    reasoning (its reasoning models keep it server-side).
    """

    reasoning_shape = "none"  # the delta field reasoning arrives in
    whole_calls = False  # a call arrives whole, arguments and all, in one chunk (else in fragments)

    def __init__(self, model: str, *, reasoning: bool) -> None:
        self.model = model
        self.reasoning = reasoning  # this answer has reasoning (some servers then change their content chunks)
        self.id = self.completion_id()
        self.created = int(time.time())

    def completion_id(self) -> str:
        return f"chatcmpl-fake-{time.monotonic_ns()}"

    def call_id(self) -> str:
        return "call_" + _random(24)

    # -- the deltas of each kind of chunk ---------------------------------------------------------------------------

    def first(self) -> dict[str, Any] | None:
        return {"role": "assistant", "content": "", "refusal": None}

    def reasoning_delta(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def content_delta(self, text: str) -> dict[str, Any]:
        return {"content": text}

    def call_start(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        fragment = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return {"tool_calls": [fragment]}

    def call_arguments(self, index: int, text: str) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, "function": {"arguments": text}}]}

    def call_whole(self, index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
        raise NotImplementedError

    def finish(self) -> dict[str, Any]:
        return {}

    def after_reasoning(self) -> list[dict[str, Any]]:
        """Chunks some servers send once the model is done (OpenRouter's reasoning signature)."""
        return []

    # -- the envelope -----------------------------------------------------------------------------------------------

    def choice(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def envelope(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def event(self, fields: dict[str, Any]) -> str:
        return f"data: {json.dumps({**self.envelope(), **fields})}\n\n"

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        return self.event({"choices": [self.choice(delta, finish_reason)]})

    def usage_event(self, usage: dict[str, int]) -> str:
        return self.event({"choices": [], "usage": usage})

    # -- a whole answer ---------------------------------------------------------------------------------------------

    def answer(self, script: Script) -> tuple[list[str], list[str]]:
        """The chunks before the answer (not counted), and the answer's chunks."""
        deltas = [self.reasoning_delta(text) for text in script.reasoning]
        deltas += [self.content_delta(token) for token in script.tokens]
        deltas += self.calls(script)
        deltas += self.after_reasoning() if script.reasoning else []
        first = self.first()
        if first is None:
            return [], [self.chunk(delta) for delta in deltas]
        if not script.reasoning and not script.tokens and script.tool_calls and self.merges_role_into_call():
            deltas[0] = {"role": "assistant", "content": None, **deltas[0], "refusal": None}
            return [], [self.chunk(delta) for delta in deltas]
        return [self.chunk(first)], [self.chunk(delta) for delta in deltas]

    def merges_role_into_call(self) -> bool:
        return True

    def calls(self, script: Script) -> list[dict[str, Any]]:
        ids = [call.id or self.call_id() for call in script.tool_calls]
        if self.whole_calls:
            return [
                self.call_whole(index, ids[index], call.name, call.arguments_text)
                for index, call in enumerate(script.tool_calls)
            ]
        per_call = [
            [
                self.call_start(index, ids[index], call.name),
                *(self.call_arguments(index, text) for text in call.argument_fragments()),
            ]
            for index, call in enumerate(script.tool_calls)
        ]
        if script.interleave_tool_calls:
            rounds = itertools.zip_longest(*per_call)
            return [delta for deltas in rounds for delta in deltas if delta is not None]
        return [delta for deltas in per_call for delta in deltas]

    def closing(self, finish_reason: str, usage: dict[str, int] | None) -> list[str]:
        events = [self.chunk(self.finish(), finish_reason)]
        if usage is not None:
            events.append(self.usage_event(usage))
        return events


class _DeepSeek(_Wire):
    """DeepSeek's API (deepseek-reasoner): `reasoning_content` beside `content`, the other one null on each chunk.

    Recorded traffic (github.com/CaiZongyuan/agentscope-nextjs-ai-demo, backend/docs/example-completions.md; the
    streaming example of api-docs.deepseek.com/guides/reasoning_model): the first chunk is `{role, content: null,
    reasoning_content: ""}`, reasoning chunks `{content: null, reasoning_content}`, answer chunks `{content,
    reasoning_content: null}`, and the finish chunk `{content: "", reasoning_content: null}` carries the usage itself
    (no separate usage chunk). Ids are UUIDs. Tool calls: OpenAI's fragments, with `content: null`.
    """

    reasoning_shape = "reasoning_content"

    def completion_id(self) -> str:
        return str(uuid.uuid4())

    def call_id(self) -> str:
        return f"call_0_{uuid.uuid4()}"

    def envelope(self) -> dict[str, Any]:
        return {**super().envelope(), "system_fingerprint": "fp_ffc7281d48_prod0820_fp8_kvcache"}

    def first(self) -> dict[str, Any]:
        if self.reasoning:
            return {"role": "assistant", "content": None, "reasoning_content": ""}
        return {"role": "assistant", "content": ""}

    def reasoning_delta(self, text: str) -> dict[str, Any]:
        return {"content": None, "reasoning_content": text}

    def content_delta(self, text: str) -> dict[str, Any]:
        return {"content": text, "reasoning_content": None} if self.reasoning else {"content": text}

    def call_start(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        return {"content": None, **super().call_start(index, call_id, name)}

    def call_arguments(self, index: int, text: str) -> dict[str, Any]:
        return {"content": None, **super().call_arguments(index, text)}

    def merges_role_into_call(self) -> bool:
        return False

    def closing(self, finish_reason: str, usage: dict[str, int] | None) -> list[str]:
        delta = {"content": "", "reasoning_content": None} if self.reasoning else {"content": ""}
        choices = {"choices": [self.choice(delta, finish_reason)]}
        return [self.event({**choices, "usage": usage} if usage is not None else choices)]


class _LlamaCpp(_DeepSeek):
    """llama.cpp's llama-server with its default `--reasoning-format` (auto, i.e. deepseek): `reasoning_content`.

    Its deltas carry only the fields that changed (common/chat.cpp, `common_chat_msg_diff_to_json_oaicompat`):
    `reasoning_content`, `content`, or one tool call `{index, id, type, function: {name, arguments}}` whose `id`,
    `type` and `name` come only on the call's first diff while `arguments` is always present. The first chunk is
    `{role, content: null}` (recorded traffic in github.com/g0t4/ask-openai.nvim, lua/ask-openai/rewrites/harmony/
    NOTES.md). With `--reasoning-format none` the think block stays in `content`: give it as tokens.
    """

    def completion_id(self) -> str:
        return "chatcmpl-" + _random(32)

    def call_id(self) -> str:
        return _random(32)

    def envelope(self) -> dict[str, Any]:
        return {**_Wire.envelope(self), "system_fingerprint": "b6881-8b11deea4"}

    def choice(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {"finish_reason": finish_reason, "index": 0, "delta": delta}

    def first(self) -> dict[str, Any]:
        return {"role": "assistant", "content": None}

    def reasoning_delta(self, text: str) -> dict[str, Any]:
        return {"reasoning_content": text}

    def content_delta(self, text: str) -> dict[str, Any]:
        return {"content": text}

    def call_start(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        return _Wire.call_start(self, index, call_id, name)

    def call_arguments(self, index: int, text: str) -> dict[str, Any]:
        return _Wire.call_arguments(self, index, text)

    def closing(self, finish_reason: str, usage: dict[str, int] | None) -> list[str]:
        events = [self.chunk({}, finish_reason)]
        if usage is not None:
            timings = {"prompt_n": usage["prompt_tokens"], "predicted_n": usage["completion_tokens"]}
            events.append(self.event({"choices": [], "usage": usage, "timings": timings}))
        return events


class _VLLM(_Wire):
    """vLLM's OpenAI-compatible server with a `--reasoning-parser`: `delta.reasoning` (recent versions).

    `DeltaMessage` is `{role, content, reasoning, tool_calls}` (vllm/entrypoints/openai/engine/protocol.py; the field
    was `reasoning_content` until it was renamed, see vllm-project/vllm#27755), serialised without unset fields: the
    first chunk `{role, content: ""}`, then `{reasoning}` or `{content}`. A tool call's first delta is `{id, type,
    index, function: {name}}` with no arguments yet, then `{index, function: {arguments}}`; ids are
    `chatcmpl-tool-<hex>`. Choices carry vLLM's `stop_reason`.
    """

    reasoning_shape = "reasoning"

    def completion_id(self) -> str:
        return f"chatcmpl-{uuid.uuid4().hex}"

    def call_id(self) -> str:
        return f"chatcmpl-tool-{uuid.uuid4().hex}"

    def choice(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {**super().choice(delta, finish_reason), "stop_reason": None}

    def first(self) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def reasoning_delta(self, text: str) -> dict[str, Any]:
        return {"reasoning": text}

    def call_start(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        return {"tool_calls": [{"id": call_id, "type": "function", "index": index, "function": {"name": name}}]}

    def merges_role_into_call(self) -> bool:
        return False


class _Ollama(_Wire):
    """Ollama's /v1/chat/completions: `delta.reasoning`, and each tool call whole in one chunk.

    Every chunk's delta is `{role: "assistant", content, reasoning?, tool_calls?}`, `content` always present (`""`
    when there is none) and no role-only first chunk (ollama/ollama, openai/openai.go: `Message`, `ToChunks`, which
    splits a response's thinking from its content or calls into two chunks; `ToToolCalls` gives each call its `id`,
    `index`, `type` and the whole `arguments` JSON at once). Call ids are `call_` and 8 characters of [a-z0-9]
    (server/routes.go, `toolCallId`); the finish reason is `tool_calls` once a call was sent; the usage chunk has no
    choices (middleware/openai.go). Ids look like `chatcmpl-123`, `system_fingerprint` is `fp_ollama`.
    """

    reasoning_shape = "reasoning"
    whole_calls = True

    def completion_id(self) -> str:
        return f"chatcmpl-{random.randrange(999)}"

    def call_id(self) -> str:
        return "call_" + _random(8, string.ascii_lowercase + string.digits)

    def envelope(self) -> dict[str, Any]:
        return {**super().envelope(), "system_fingerprint": "fp_ollama"}

    def choice(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "finish_reason": finish_reason}

    def first(self) -> None:
        return None

    def reasoning_delta(self, text: str) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "reasoning": text}

    def content_delta(self, text: str) -> dict[str, Any]:
        return {"role": "assistant", "content": text}

    def call_whole(self, index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
        call = {"id": call_id, "index": index, "type": "function", "function": {"name": name, "arguments": arguments}}
        return {"role": "assistant", "content": "", "tool_calls": [call]}

    def finish(self) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}


class _OpenRouter(_Wire):
    """OpenRouter: `delta.reasoning` together with `delta.reasoning_details` ([{type: "reasoning.text", text, ...}]).

    Recorded traffic (github.com/charmbracelet/fantasy, providertests/testdata/TestOpenRouterThinking/claude-sonnet-4/
    thinking-streaming.yaml): every delta has `role` and `content` (`""`, or `null` on tool-call chunks); a reasoning
    chunk carries the same text twice, in `reasoning` and in one `reasoning.text` detail; tool calls are OpenAI's
    fragments; once the model is done a detail with only the reasoning's `signature` (no text) arrives; the finish
    chunk has `reasoning: null` and OpenRouter's `native_finish_reason`; usage follows with a `cost`. Ids are
    `gen-<time>-<random>`; each chunk names the `provider`. OpenRouter also sends `: OPENROUTER PROCESSING` comments
    to keep the connection open (openrouter.ai/docs, streaming), which a client must skip.
    """

    reasoning_shape = "reasoning+reasoning_details"
    detail = {"format": "anthropic-claude-v1", "index": 0}

    def completion_id(self) -> str:
        return f"gen-{int(time.time())}-{_random(20)}"

    def call_id(self) -> str:
        return "toolu_vrtx_" + _random(24)

    def envelope(self) -> dict[str, Any]:
        return {**super().envelope(), "provider": "Google"}

    def choice(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "finish_reason": finish_reason, "native_finish_reason": finish_reason}

    def first(self) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def reasoning_delta(self, text: str) -> dict[str, Any]:
        details = [{"type": "reasoning.text", "text": text, **self.detail}]
        return {"content": "", "role": "assistant", "reasoning": text, "reasoning_details": details}

    def content_delta(self, text: str) -> dict[str, Any]:
        return {"content": text, "role": "assistant"}

    def call_start(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        return {"content": None, "role": "assistant", **super().call_start(index, call_id, name)}

    def call_arguments(self, index: int, text: str) -> dict[str, Any]:
        return {"content": None, "role": "assistant", **super().call_arguments(index, text)}

    def after_reasoning(self) -> list[dict[str, Any]]:
        details = [{"type": "reasoning.text", "signature": "EqkDCkgICxACGAIqQPS7" + _random(40), **self.detail}]
        return [{"content": "", "role": "assistant", "reasoning_details": details}]

    def finish(self) -> dict[str, Any]:
        return {"content": "", "role": "assistant", "reasoning": None}

    def merges_role_into_call(self) -> bool:
        return False

    def answer(self, script: Script) -> tuple[list[str], list[str]]:
        opening, events = super().answer(script)
        return [": OPENROUTER PROCESSING\n\n", *opening], events

    def usage_event(self, usage: dict[str, int]) -> str:
        return self.event({"choices": [], "usage": {**usage, "cost": 0.0001, "is_byok": False}})


_WIRES: dict[str, type[_Wire]] = {
    "openai": _Wire,
    "deepseek": _DeepSeek,
    "llama.cpp": _LlamaCpp,
    "vllm": _VLLM,
    "ollama": _Ollama,
    "openrouter": _OpenRouter,
}
SERVERS = tuple(_WIRES)


class _ResponsesWire:
    """OpenAI's Responses API stream (`POST /v1/responses`, `stream: true`) for one script.

    Each event is `event: <type>` and a JSON `data` line that repeats the `type` and has a `sequence_number` counting
    from 0 over the whole stream; there is no `[DONE]`. Shapes are the openai SDK's (openai/types/responses/:
    `ResponseStreamEvent` and the `Response`, `ResponseReasoningItem`, `ResponseOutputMessage`,
    `ResponseFunctionToolCall` and `ResponseUsage` it carries), in the order the API sends them: `response.created`,
    `response.in_progress`, then per output item `response.output_item.added`, its part's `.added`, the deltas, the
    text's and the part's `.done` and `response.output_item.done`, then the response's end. The reasoning is one
    summary part; its item has `encrypted_content` when the request's `include` asks for it, as stateless (`store:
    false`) callers do. A background response is created `queued` and says so once more (`response.queued`) before
    it is `in_progress`.
    """

    def __init__(self, request: Received, script: Script, *, number: int) -> None:
        self.body = request.body
        self.background = bool(request.body.get("background"))
        self.script = script
        self.id = f"resp_fake_{number}"
        self.created = int(time.time())
        self.sequence = itertools.count()
        self.output: list[dict[str, Any]] = []  # the items done so far, in order
        self.steps: list[list[str]] = []
        self.pending: list[str] = []  # events that go out with the next delta (or with the end)

    def event(self, kind: str, **fields: Any) -> str:
        data = {"type": kind, "sequence_number": next(self.sequence), **fields}
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n"

    def say(self, kind: str, **fields: Any) -> None:
        """An event that is not counted: it goes out just before the next delta, or with the end."""
        self.pending.append(self.event(kind, **fields))

    def delta(self, kind: str, **fields: Any) -> None:
        """A counted event: one step of the answer, with the events waiting for it."""
        self.steps.append([*self.pending, self.event(kind, **fields)])
        self.pending = []

    def response(self, status: str, **fields: Any) -> dict[str, Any]:
        """The `response` object, with what the API echoes of the request."""
        body = self.body
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": self.background,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": body.get("model", "fake-model"),
            "output": list(self.output),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None, **(body.get("reasoning") or {})},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_logprobs": 0,
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": body.get("metadata") or {},
            **fields,
        }

    def answer(self) -> _Answer:
        opening = [
            self.event("response.created", response=self.response("queued" if self.background else "in_progress"))
        ]
        if self.background:
            opening.append(self.event("response.queued", response=self.response("queued")))
        opening.append(self.event("response.in_progress", response=self.response("in_progress")))
        script = self.script
        if script.reasoning:
            self.reasoning_item(script.reasoning)
        if script.tokens:
            self.message_item(script.tokens)
        for call in script.tool_calls:
            self.call_item(call)
        self.end()
        return opening, self.steps, self.pending

    def item_id(self, prefix: str) -> str:
        return f"{prefix}_{_random(48, string.hexdigits[:16])}"

    def reasoning_item(self, chunks: list[str]) -> None:
        index, item_id, text = len(self.output), self.item_id("rs"), "".join(chunks)
        where = {"item_id": item_id, "output_index": index, "summary_index": 0}
        opened = {"id": item_id, "type": "reasoning", "summary": []}
        self.say("response.output_item.added", output_index=index, item=opened)
        self.say("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""})
        for chunk in chunks:
            self.delta("response.reasoning_summary_text.delta", **where, delta=chunk)
        self.say("response.reasoning_summary_text.done", **where, text=text)
        self.say("response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text})
        item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}
        if "reasoning.encrypted_content" in (self.body.get("include") or []):
            item["encrypted_content"] = "gAAAAAB" + _random(120)  # opaque: a caller only sends it back
        self.done(item)

    def message_item(self, tokens: list[str]) -> None:
        index, item_id, text = len(self.output), self.item_id("msg"), "".join(tokens)
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        self.say("response.output_item.added", output_index=index, item=item)
        self.say("response.content_part.added", **where, part={"type": "output_text", "text": "", "annotations": []})
        for token in tokens:
            self.delta("response.output_text.delta", **where, delta=token, logprobs=[])
        part = {"type": "output_text", "text": text, "annotations": []}
        self.say("response.output_text.done", **where, text=text, logprobs=[])
        self.say("response.content_part.done", **where, part=part)
        self.done({**item, "status": "completed", "content": [part]})

    def call_item(self, call: ToolCallScript) -> None:
        index, item_id = len(self.output), self.item_id("fc")
        call_id = call.id or "call_" + _random(24)
        item = {"id": item_id, "type": "function_call", "status": "in_progress", "call_id": call_id}
        item |= {"name": call.name, "arguments": ""}
        self.say("response.output_item.added", output_index=index, item=item)
        for fragment in call.argument_fragments():
            self.delta("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=fragment)
        arguments = call.arguments_text
        where = {"item_id": item_id, "output_index": index}
        self.say("response.function_call_arguments.done", **where, arguments=arguments, name=call.name)
        self.done({**item, "status": "completed", "arguments": arguments})

    def done(self, item: dict[str, Any]) -> None:
        self.say("response.output_item.done", output_index=len(self.output), item=item)
        self.output.append(item)

    def end(self) -> None:
        """The response's last event: failed, an error, incomplete or completed, as the script says."""
        script = self.script
        if script.error_event is not None:
            code = script.error_event.get("code") or "server_error"
            message = script.error_event.get("message") or "fake failure"
            if script.error_type == "error":
                self.say("error", code=code, message=message, param=None)
            else:
                failed = self.response("failed", error={"code": code, "message": message})
                self.say("response.failed", response=failed)
            return
        finish_reason = script.finish_reason or ("tool_calls" if script.tool_calls else "stop")
        usage = self.usage() if script.usage else None
        reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish_reason)
        if reason is not None:
            incomplete = self.response("incomplete", incomplete_details={"reason": reason}, usage=usage)
            self.say("response.incomplete", response=incomplete)
        else:
            self.say("response.completed", response=self.response("completed", usage=usage))

    def usage(self) -> dict[str, Any]:
        """Words in for input tokens, the delta events for output tokens (as chat counts chunks)."""
        input_tokens, output_tokens = _input_words(self.body), len(self.steps)
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": len(self.script.reasoning)},
            "total_tokens": input_tokens + output_tokens,
        }


def _input_words(body: dict[str, Any]) -> int:
    """The words of a Responses request's texts, counted as a chat request's messages are (the system message is the
    `instructions` here, a tool result a `function_call_output`), so one conversation costs the same on both APIs."""
    items = body.get("input", [])
    texts: list[Any] = [body.get("instructions")]
    for item in [{"content": items}] if isinstance(items, str) else items:
        content = item.get("content", item.get("output"))
        if isinstance(content, list):
            texts += [part.get("text") for part in content if isinstance(part, dict)]
        else:
            texts.append(content)
    return sum(len(str(text or "").split()) for text in texts)


_TERMINAL = {"completed", "incomplete", "failed", "cancelled"}
_CANCEL_REFUSALS = {
    "completed": "Cannot cancel a completed response.",
    "failed": "Cannot cancel a failed response.",
    "incomplete": "Cannot cancel an incomplete response.",
}


class Background:
    """A stored response of background mode: its generation runs as a task of its own, apart from any connection.

    The generation follows the script as `_stream` does a connection (its `interval`, its `pause_after` with the POST's
    `paused` set, its `hang_after`, which now lasts until the response is cancelled) and keeps every event it makes, so
    any number of connections can follow it from any sequence number (`_relay`). `drop_after` and `end_after` belong to
    the POST's connection, not here: that is what background means. A test waits on `finished` (the response's end
    was made, or it was cancelled) or `cancelled_event`.
    """

    def __init__(self, request: Received, script: Script, *, number: int) -> None:
        self.request = request  # the POST that created it
        self.script = script
        wire = _ResponsesWire(request, script, number=number)
        self.id = wire.id
        self.opening, self.steps, self.closing = wire.answer()
        # How many events are out once each step is: a connection that sends that many has sent one more step.
        self.step_ends = set(itertools.accumulate((len(step) for step in self.steps), initial=len(self.opening)))
        self.step_ends.discard(len(self.opening))
        self.events: list[str] = []  # each as sent (`event:` and `data:` lines); index i has sequence_number i
        self.output: list[dict[str, Any]] = []  # the items done so far
        self.response = wire.response("queued", output=[])  # the latest `response` the events carried
        self.steps_done = 0  # steps of the answer made (see `Script`)
        self.cancelled = False
        self.finished = asyncio.Event()
        self.cancelled_event = asyncio.Event()
        self._changed = asyncio.Event()  # set, and replaced, whenever an event is made or the response ends
        self.task = asyncio.create_task(self._generate(), name=f"fake-openai {self.id}")

    @property
    def status(self) -> str:
        return self.response["status"]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        """The events' JSON, in order: what a test compares with what a client got."""
        return [_data_of(event) for event in self.events]

    def snapshot(self) -> dict[str, Any]:
        """The response as a retrieve answers it: the latest state, with the output done so far."""
        return {**self.response, "output": list(self.output)}

    def events_through(self, steps: int | None) -> int | None:
        """How many events go out up to and including `steps` steps (None if the answer has no more steps)."""
        if steps is None or steps >= len(self.steps):
            return None
        return len(self.opening) + sum(len(step) for step in self.steps[:steps])

    def next_change(self) -> Awaitable[bool]:
        """Until the next event is made, or the response ends (bound now, so no change in between is missed)."""
        return self._changed.wait()

    def cancel(self) -> None:
        """Stop the generation where it is: no more events, and the live streams end after those already sent."""
        self.task.cancel()
        self.cancelled = True
        self.response = {**self.response, "status": "cancelled"}
        self.cancelled_event.set()
        self._end()

    def halt(self) -> asyncio.Task[None]:
        """Stop the generation without a word (the fake is reset or stops): nothing is recorded."""
        self.task.cancel()
        return self.task

    async def _generate(self) -> None:
        script = self.script
        self._publish(self.opening)
        for index, step in enumerate(self.steps):
            if script.hang_after is not None and index == script.hang_after:
                await asyncio.Event().wait()  # until cancelled
            if script.pause_after is not None and index == script.pause_after:
                self.request.paused.set()
                script.paused.set()
                await script.proceed.wait()
            if script.interval:
                await asyncio.sleep(script.interval)
            self._publish(step)
            self.steps_done += 1
        self._publish(self.closing)
        self._end()

    def _publish(self, events: list[str]) -> None:
        for event in events:
            self.events.append(event)
            self._note(_data_of(event))
        self._wake()

    def _note(self, data: dict[str, Any]) -> None:
        """What an event changes in the response a retrieve answers."""
        if "response" in data:
            self.response = {**data["response"], "output": []}
        elif data["type"] == "error":
            self.response = {**self.response, "status": "failed", "error": {k: data[k] for k in ("code", "message")}}
        elif data["type"] == "response.output_item.done":
            self.output.append(data["item"])

    def _end(self) -> None:
        self.finished.set()
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


async def _relay(
    background: Background,
    request: Received,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    after: int,
    cut: int | None = None,
    end: int | None = None,
) -> bool:
    """Stream a stored response's events after sequence number `after`, then the live ones, until its end; or cut the
    connection (`cut`) or end the body (`end`) once that many events are out. The client leaving stops only this."""
    writer.write(_head(200, "text/event-stream", "Transfer-Encoding: chunked"))
    gone = asyncio.ensure_future(_until_gone(reader))
    try:
        whole = await _follow(background, request, writer, gone, first=max(after + 1, 0), cut=cut, end=end)
    finally:
        gone.cancel()  # before the body ends: the client's next request must find the reader free
        await asyncio.wait({gone})
    if not whole:
        return False
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    request.closed.set()
    return True


async def _follow(
    background: Background,
    request: Received,
    writer: asyncio.StreamWriter,
    gone: asyncio.Future[None],
    *,
    first: int,
    cut: int | None,
    end: int | None,
) -> bool:
    """Send the events from index `first` as they are made; False if the connection is done with (cut, or gone)."""
    sent = first
    while sent < len(background.events) or not background.finished.is_set():
        if sent == len(background.events):
            changed = asyncio.ensure_future(background.next_change())
            await asyncio.wait({changed, gone}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            if gone.done():
                return False
            continue
        await _send(writer, background.events[sent])
        sent += 1
        if sent in background.step_ends:
            request.tokens_sent += 1
        if sent == cut:
            writer.transport.abort()
            return False
        if sent == end:
            break
    return True


async def _until_gone(reader: asyncio.StreamReader) -> None:
    """Returns once the client has closed the connection: no request comes on it while a body streams, so nothing
    but the end of it can arrive meanwhile."""
    with contextlib.suppress(ConnectionError):
        await reader.read(1)


def _data_of(event: str) -> dict[str, Any]:
    return json.loads(event.split("data: ", 1)[1])


def _invalid(message: str, *, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error body for a request it refuses."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}


def _not_found(response_id: str) -> dict[str, Any]:
    return _invalid(f"Response with id '{response_id}' not found.")


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _version = line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    raw = await reader.readexactly(int(headers.get("content-length", 0)))
    return Received(path=path, headers=headers, body=json.loads(raw) if raw else {}, method=method)


def _head(status: int, content_type: str, length_header: str) -> bytes:
    reason = REASONS.get(status, "Error")
    return f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{length_header}\r\n\r\n".encode()


async def _send(writer: asyncio.StreamWriter, event: str) -> None:
    data = event.encode()
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
    await writer.drain()


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--rate", type=float, default=0, help="tokens per second per answer (0: as fast as possible)")
    parser.add_argument("--reasoning", type=int, default=0, help="reasoning chunks before each answer")
    parser.add_argument("--server", choices=SERVERS, help="wire shapes (default: openai; deepseek with --reasoning)")
    options = parser.parse_args()
    fake = FakeOpenAI()
    fake.default = Script(
        tokens=[f" tok{i}" for i in range(options.tokens)],
        interval=1 / options.rate if options.rate else 0,
        reasoning=[f" thought{i}" for i in range(options.reasoning)],
        server=options.server or ("deepseek" if options.reasoning else "openai"),
    )
    await fake.start(options.port)
    print(f"fake OpenAI at {fake.base_url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main())
