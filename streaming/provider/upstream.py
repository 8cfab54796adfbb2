"""The model provider: one `AsyncOpenAI` client per process, and its streaming chunks reduced to what the relay needs.

`get_client` is the only place the client is built, over the process's one pool of connections (`transport`). The
demo model is the same client with a transport that answers in-process (see `streaming.provider.demo`), so the demo
exercises every line the real provider does.

A streamed answer is asked for with the client's base URL, headers, timeout and retries, but sent straight to its
transport (`direct`): the SDK's request machinery cost more of the event loop than anything else a prompt does
before it goes upstream. The chunks of the answer are read from the raw SSE bytes (see `sse`) and parsed with
orjson: building the SDK's typed chunk object costs about 200 µs per token, thirty times the JSON parsing itself, and
the relay needs a few fields of it (see docs/performance.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Literal

import openai
import orjson
from django.core.signals import setting_changed
from django.dispatch import receiver
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from streaming import errors
from streaming.conf import app_settings
from streaming.errors import Truncated, UpstreamStreamError
from streaming.protocol import Usage
from streaming.provider import direct, responses
from streaming.provider.demo import DemoTransport
from streaming.provider.direct import Call, Provider
from streaming.provider.pieces import Piece, merge_text
from streaming.provider.sse import DataLines
from streaming.provider.transport import Hold, SessionTransport
from streaming.relay.tool_calls import CallFragment

logger = logging.getLogger(__name__)

DEMO_MODEL = "demo"
Pause = Callable[[Hold], Awaitable[None]]  # awaited between reads, given the reply's `Hold`


def demo_enabled() -> bool:
    """The demo model answers only when no API key is configured; a configured key always wins."""
    return not app_settings.OPENAI_API_KEY


_provider: Provider | None = None
_client: openai.AsyncOpenAI | None = None
_retired: list[openai.AsyncOpenAI] = []  # replaced by a settings change (tests), still to be closed


def get_client() -> openai.AsyncOpenAI:
    """The process's client; its connection pool is shared by every stream the process serves."""
    global _client, _provider
    if _client is None:
        transport = DemoTransport() if demo_enabled() else SessionTransport()
        _client = _build_client(transport)
        _provider = Provider.of_client(_client, transport)
    return _client


def get_provider() -> Provider:
    """What a streamed request is sent with (see `direct`): read from the process's client, over its transport."""
    get_client()
    assert _provider is not None
    return _provider


async def close_clients() -> None:
    """Close the connection pool, at shutdown: streams started afterwards get a new client."""
    global _client, _provider
    clients = [*_retired, *([_client] if _client is not None else [])]
    _client = _provider = None
    _retired.clear()
    for client in clients:
        await client.close()


def _build_client(transport: SessionTransport | DemoTransport) -> openai.AsyncOpenAI:
    http_client = openai.DefaultAsyncHttpxClient(transport=transport)
    if isinstance(transport, DemoTransport):
        return openai.AsyncOpenAI(
            api_key="demo", base_url="http://demo.invalid/v1", http_client=http_client, max_retries=0
        )
    return openai.AsyncOpenAI(
        api_key=app_settings.OPENAI_API_KEY,
        base_url=app_settings.OPENAI_BASE_URL,
        timeout=app_settings.OPENAI_TIMEOUT,
        max_retries=app_settings.OPENAI_MAX_RETRIES,
        http_client=http_client,
    )


@receiver(setting_changed)
def _forget_client(*, setting: str, **kwargs: Any) -> None:
    global _client, _provider
    if setting.startswith(("STREAMING_OPENAI_", "STREAMING_DEMO_")) and _client is not None:
        _retired.append(_client)
        _client = _provider = None


def takes_over() -> bool:
    """Whether answers outlive their worker (`STREAMING_TAKEOVER`): not for the demo model, which keeps no response
    a worker could re-attach to."""
    return app_settings.TAKEOVER and not demo_enabled()


def available_models() -> tuple[str, ...]:
    """Models a client may choose, default first."""
    if demo_enabled():
        return (DEMO_MODEL,)
    return tuple(dict.fromkeys([app_settings.MODEL, *app_settings.MODELS]))


def add_usage(total: Usage | None, more: Usage) -> Usage:
    """Usage summed over the responses of one answer (each tool round is a request of its own)."""
    if total is None:
        return more
    return {name: total[name] + more[name] for name in ("prompt_tokens", "completion_tokens", "total_tokens")}  # type: ignore[return-value]


_TEXT_ONLY = frozenset({"role", "content"})
REASONING_FIELDS = ("reasoning_content", "reasoning")


def read_chunk(chunk: dict[str, Any]) -> Piece:
    """Reduce a decoded `chat.completion.chunk` to a `Piece`.

    The role-only first chunk becomes an empty piece, which the relay drops; the usage chunk that `include_usage`
    adds has no choices. Reasoning comes as `reasoning_content` (DeepSeek, llama.cpp), as `reasoning` (vLLM, Ollama,
    OpenRouter), or only as OpenRouter's `reasoning_details`; a server that sends two of them sends the same text
    twice, so the first present is read.
    """
    if "error" in chunk:  # some providers report a failure mid-answer as an SSE event
        raise UpstreamStreamError(chunk["error"])
    raw_usage = chunk.get("usage")
    usage: Usage | None = None
    if raw_usage:
        usage = {
            "prompt_tokens": raw_usage.get("prompt_tokens") or 0,
            "completion_tokens": raw_usage.get("completion_tokens") or 0,
            "total_tokens": raw_usage.get("total_tokens") or 0,
        }
    choices = chunk.get("choices")
    if not choices:
        return Piece(usage=usage)
    choice = choices[0]
    delta = choice.get("delta") or {}
    if (len(delta) == 1 and "content" in delta) or delta.keys() <= _TEXT_ONLY:  # the common case, kept cheap: text
        return Piece(text=delta.get("content") or "", finish_reason=choice.get("finish_reason"), usage=usage)
    field, reasoning = next(
        ((name, value) for name in REASONING_FIELDS if isinstance(value := delta.get(name), str) and value), ("", "")
    )
    if not reasoning and (reasoning := _details_text(delta.get("reasoning_details"))):
        field = "reasoning_details"
    return Piece(
        text=delta.get("content") or "",
        reasoning=reasoning,
        reasoning_field=field,
        calls=_call_fragments(delta.get("tool_calls")),
        finish_reason=choice.get("finish_reason"),
        usage=usage,
    )


def _details_text(details: Any) -> str:
    """The readable text of OpenRouter's `reasoning_details` (encrypted entries carry none)."""
    if not isinstance(details, list):
        return ""
    texts = (item.get("text") or item.get("summary") or "" for item in details if isinstance(item, dict))
    return "".join(text for text in texts if isinstance(text, str))


def _call_fragments(raw: Any) -> tuple[CallFragment, ...]:
    if not isinstance(raw, list):
        return ()
    fragments = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        function = item.get("function") or {}
        index = item.get("index")
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # a server that sends the arguments as an object, not as JSON text
            arguments = orjson.dumps(arguments).decode()
        fragments.append(
            CallFragment(
                index=index if isinstance(index, int) else position,
                id=item.get("id") or None,
                name=function.get("name") or None,
                arguments=arguments if isinstance(arguments, str) else "",
            )
        )
    return tuple(fragments)


def stream_pieces(
    *,
    model: str,
    messages: Iterable[ChatCompletionMessageParam],
    temperature: float | None = None,
    max_tokens: int | None = None,
    tools: list[ChatCompletionToolParam] | None = None,
    tool_choice: Literal["none"] | None = None,
    between_reads: Pause | None = None,
) -> AsyncIterator[Piece]:
    """Ask the model and yield its answer as it is written, through the API `STREAMING_OPENAI_API` names.

    Once the answer has shown its first words (text, reasoning or a tool call), `between_reads` is awaited after
    each read of the response, with the response's `Hold`, to enter if it waits: what the model writes meanwhile
    arrives with the next read.

    Closing this generator (or cancelling the task iterating it) closes the HTTP response, so the provider stops
    generating and the connection goes back to the pool.
    """
    if app_settings.OPENAI_API == "responses":
        call = _responses_request(model, messages, temperature, max_tokens, tools, tool_choice)
        read = responses.EventReader().read
    else:
        call = _chat_request(model, messages, temperature, max_tokens, tools, tool_choice)
        read = read_chunk
    return _read_pieces(call, read, between_reads)  # the request is sent when the answer is first read


def resume_pieces(*, response: str, after: int, between_reads: Pause | None = None) -> AsyncIterator[Piece]:
    """Re-attach to a background response of the Responses API, and yield its answer from the event after number
    `after` on (see `relay.handover`); `between_reads` as for `stream_pieces`.

    Raises `openai.NotFoundError` when the provider no longer has the response (expired, or never stored).
    """
    call = Call("GET", f"responses/{response}", params={"stream": "true", "starting_after": str(after)})
    return _read_pieces(call, responses.EventReader().read, between_reads)


async def cancel_response(response: str) -> None:
    """Stop a background response, which would otherwise go on (and be billed) after its connection closed. A
    failure is logged, not raised: the stream has ended either way."""
    try:
        await get_client().responses.cancel(response)
    except openai.APIError as exc:
        logger.warning("could not cancel response %s upstream: %s", response, errors.describe(exc))


async def _read_pieces(
    call: Call, read: Callable[[dict[str, Any]], Piece | None], between_reads: Pause | None
) -> AsyncIterator[Piece]:
    async with direct.open_stream(call, get_provider()) as response:
        lines = DataLines()
        finished = shown = False
        async for data in response.chunks():
            pieces, done, failure = pieces_of(lines.feed(data), read)
            for piece in merge_text(pieces):
                finished = finished or piece.finish_reason is not None
                shown = shown or bool(piece.text or piece.reasoning or piece.calls)
                yield piece
            if failure is not None:
                raise failure
            if done:
                response.answered()
                return
            if shown and between_reads is not None:
                await between_reads(response.hold)
        if not finished:  # the body ended cleanly but the answer did not: a proxy or the provider cut it
            raise Truncated()


def pieces_of(
    payloads: list[bytes], read: Callable[[dict[str, Any]], Piece | None]
) -> tuple[list[Piece], bool, Exception | None]:
    """The pieces of one read's payloads; whether the answer's end (`[DONE]`) was among them; and the error that
    cut them short, raised only once the pieces before it are relayed."""
    pieces: list[Piece] = []
    try:
        for payload in payloads:
            if payload == b"[DONE]":  # Chat Completions' end; the Responses API ends with its last event
                return pieces, True, None
            if (piece := read(orjson.loads(payload))) is not None:
                pieces.append(piece)
    except Exception as exc:  # a malformed payload, or an error event: what came before it still counts
        return pieces, False, exc
    return pieces, False, None


def reasons(model: str) -> bool:
    """Whether `model` is one that reasons (`STREAMING_REASONING_MODELS`): on the Responses API it is asked for its
    reasoning summaries, and sent no `temperature`, which such models refuse."""
    return any(model.startswith(prefix) for prefix in app_settings.REASONING_MODELS)


def sends_no_temperature(model: str) -> bool:
    """Whether a client's temperature is not sent with `model`: a reasoning model on the Responses API."""
    return app_settings.OPENAI_API == "responses" and reasons(model)


def _responses_request(
    model: str,
    messages: Iterable[ChatCompletionMessageParam],
    temperature: float | None,
    max_tokens: int | None,
    tools: list[ChatCompletionToolParam] | None,
    tool_choice: Literal["none"] | None,
) -> Call:
    body = responses.request_body(
        messages=messages,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        tool_choice=tool_choice,
        temperature=temperature,
        max_tokens=max_tokens,
        reasoning=reasons(model),
    )
    if takes_over():  # the provider keeps generating, and keeps the events, after the connection closes
        body.update(background=True, store=True)
    return Call("POST", "responses", body={"model": model, "stream": True, **body})


def _chat_request(
    model: str,
    messages: Iterable[ChatCompletionMessageParam],
    temperature: float | None,
    max_tokens: int | None,
    tools: list[ChatCompletionToolParam] | None,
    tool_choice: Literal["none"] | None,
) -> Call:
    body: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if tools:
        body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    return Call("POST", "chat/completions", body=body)
