"""The model provider: one `AsyncOpenAI` client per process, and its streaming chunks reduced to what the relay needs.

`get_client` is the only place the client is built. The demo model is the same client with a transport that answers
in-process (see `streaming.demo`), so the demo exercises every line the real provider does.

The SDK makes the request (authentication, retries, status errors), but the chunks of the answer are read from the
raw SSE bytes (see `sse`) and parsed with orjson: building the SDK's typed chunk object costs about 200 µs per token,
thirty times the JSON parsing itself, and the relay needs three fields of it (see docs/performance.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import openai
import orjson
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from openai.types.chat import ChatCompletionMessageParam

from streaming.errors import Truncated, UpstreamStreamError
from streaming.protocol import Usage
from streaming.sse import DataLines

DEMO_MODEL = "demo"


def demo_enabled() -> bool:
    """The demo model answers only when no API key is configured; a configured key always wins."""
    return not settings.OPENAI_API_KEY


_client: openai.AsyncOpenAI | None = None
_retired: list[openai.AsyncOpenAI] = []  # replaced by a settings change (tests), still to be closed


def get_client() -> openai.AsyncOpenAI:
    """The process's client; its connection pool is shared by every stream the process serves."""
    global _client
    if _client is None:
        _client = _build_client()
    return _client


async def close_clients() -> None:
    """Close the connection pool, at shutdown: streams started afterwards get a new client."""
    global _client
    clients = [*_retired, *([_client] if _client is not None else [])]
    _client = None
    _retired.clear()
    for client in clients:
        await client.close()


def _build_client() -> openai.AsyncOpenAI:
    if demo_enabled():
        from streaming.demo import DemoTransport

        return openai.AsyncOpenAI(
            api_key="demo",
            base_url="http://demo.invalid/v1",
            http_client=openai.DefaultAsyncHttpxClient(transport=DemoTransport()),
            max_retries=0,
        )
    return openai.AsyncOpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT,
        max_retries=settings.OPENAI_MAX_RETRIES,
        # The SDK's aiohttp transport reads a chunk in about half the CPU time of its default one, which matters when
        # every token of hundreds of answers arrives in a read of its own (docs/performance.md).
        http_client=openai.DefaultAioHttpClient(),
    )


@receiver(setting_changed)
def _forget_client(*, setting: str, **kwargs: Any) -> None:
    global _client
    if setting.startswith(("OPENAI_", "DEMO_")) and _client is not None:
        _retired.append(_client)
        _client = None


def available_models() -> tuple[str, ...]:
    """Models a client may choose, default first."""
    if demo_enabled():
        return (DEMO_MODEL,)
    return tuple(dict.fromkeys([settings.OPENAI_MODEL, *settings.OPENAI_MODELS]))


@dataclass(frozen=True, slots=True)
class Piece:
    """What one upstream chunk contributes: some answer text, the finish reason, or the token usage."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


def read_chunk(chunk: dict[str, Any]) -> Piece:
    """Reduce a decoded `chat.completion.chunk` to a `Piece`.

    The role-only first chunk becomes an empty piece, which the relay drops; the usage chunk that `include_usage`
    adds has no choices.
    """
    if "error" in chunk:  # some providers report a failure mid-answer as an SSE event
        raise UpstreamStreamError(chunk["error"])
    raw_usage = chunk.get("usage")
    usage: Usage | None = None
    if raw_usage:
        usage = {
            "prompt_tokens": raw_usage.get("prompt_tokens", 0),
            "completion_tokens": raw_usage.get("completion_tokens", 0),
            "total_tokens": raw_usage.get("total_tokens", 0),
        }
    choices = chunk.get("choices")
    if not choices:
        return Piece(usage=usage)
    choice = choices[0]
    return Piece(
        text=(choice.get("delta") or {}).get("content") or "", finish_reason=choice.get("finish_reason"), usage=usage
    )


async def stream_pieces(
    *,
    model: str,
    messages: Iterable[ChatCompletionMessageParam],
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> AsyncIterator[Piece]:
    """Ask the model and yield its answer as it is written.

    Closing this generator (or cancelling the task iterating it) closes the HTTP response, so the provider stops
    generating and the connection goes back to the pool.
    """
    options: dict[str, Any] = {}
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    request = get_client().chat.completions.with_streaming_response.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **options,
    )
    async with request as response:
        lines = DataLines()
        finished = False
        async for data in response.http_response.aiter_bytes():
            for payload in lines.feed(data):
                if payload == b"[DONE]":
                    return
                piece = read_chunk(orjson.loads(payload))
                finished = finished or piece.finish_reason is not None
                yield piece
        if not finished:  # the body ended cleanly but the answer did not: a proxy or the provider cut it
            raise Truncated()
