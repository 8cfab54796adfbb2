"""The model provider: one `AsyncOpenAI` client per process, and its streaming chunks reduced to what the relay needs.

`get_client` is the only place the client is built. The demo model is the same client with a transport that answers
in-process (see `streaming.demo`), so the demo exercises every line the real provider does.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import openai
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from streaming.protocol import Usage

DEMO_MODEL = "demo"


def demo_enabled() -> bool:
    """The demo model answers only when no API key is configured; a configured key always wins."""
    return not settings.OPENAI_API_KEY


@functools.cache
def get_client() -> openai.AsyncOpenAI:
    """The process's client; its connection pool is shared by every stream the process serves."""
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
    )


@receiver(setting_changed)
def _forget_client(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(("OPENAI_", "DEMO_")):
        get_client.cache_clear()


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


def read_chunk(chunk: ChatCompletionChunk) -> Piece:
    """Reduce a chunk to a `Piece`; the role-only first chunk becomes an empty one, which the relay drops."""
    usage: Usage | None = None
    if chunk.usage is not None:
        usage = {
            "prompt_tokens": chunk.usage.prompt_tokens,
            "completion_tokens": chunk.usage.completion_tokens,
            "total_tokens": chunk.usage.total_tokens,
        }
    if not chunk.choices:  # the usage chunk that include_usage adds has no choices
        return Piece(usage=usage)
    choice = chunk.choices[0]
    return Piece(text=choice.delta.content or "", finish_reason=choice.finish_reason, usage=usage)


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
    stream = await get_client().chat.completions.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **options,
    )
    async with stream:
        async for chunk in stream:
            yield read_chunk(chunk)
