"""The built-in demo model: an in-process HTTP transport that answers like OpenAI's streaming endpoint.

It exists so that a new user sees streaming before configuring a key. Because it plugs in below the `openai` client
(as the transport of its HTTP client), a demo answer travels through the SDK's SSE parser, `upstream.read_chunk`, the
relay and the log exactly as a real one does. It writes at `DEMO_TOKENS_PER_SECOND`, honours `max_tokens` (finishing
with `length`), and reports usage.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2  # the HTTP library of the openai SDK; its transport interface is what we implement
from django.conf import settings

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

_TOKEN = re.compile(r"\s*\S{1,6}|\s+")


def tokens_of(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to it, the way a model emits them."""
    return _TOKEN.findall(text)


def answer_to(prompt: str) -> str:
    return ANSWER.format(prompt=" ".join(prompt.split())[:200])


class DemoTransport(httpx2.AsyncBaseTransport):
    """Answers every chat completion request with a streamed demo answer to its last user message."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(await request.aread())
        prompt = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        stream = DemoAnswer(
            tokens=tokens_of(answer_to(str(prompt))),
            max_tokens=body.get("max_tokens"),
            prompt_tokens=sum(len(tokens_of(str(m.get("content", "")))) for m in body["messages"]),
            tokens_per_second=settings.DEMO_TOKENS_PER_SECOND,
        )
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=stream, request=request)


class DemoAnswer(httpx2.AsyncByteStream):
    """The SSE body of one demo answer, paced like a model writing it."""

    def __init__(
        self, *, tokens: list[str], max_tokens: int | None, prompt_tokens: int, tokens_per_second: int
    ) -> None:
        self.tokens = tokens if max_tokens is None else tokens[:max_tokens]
        self.finish_reason = "stop" if max_tokens is None or max_tokens >= len(tokens) else "length"
        self.prompt_tokens = prompt_tokens
        self.interval = 1 / tokens_per_second
        self.id = f"chatcmpl-demo-{uuid.uuid4().hex[:12]}"
        self.created = int(time.time())

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._event({"role": "assistant", "content": ""})
        for token in self.tokens:
            await asyncio.sleep(self.interval)
            yield self._event({"content": token})
        yield self._event({}, finish_reason=self.finish_reason)
        completion = len(self.tokens)
        usage = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }
        yield self._sse({**self._envelope(), "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    def _event(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return self._sse({**self._envelope(), "choices": [choice]})

    def _envelope(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": "demo"}

    @staticmethod
    def _sse(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()
