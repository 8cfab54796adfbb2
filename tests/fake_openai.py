"""A real HTTP server that speaks OpenAI's chat-completions streaming wire format, for the real `openai` client.

Each request takes the next `Script` from the queue (or the default one) and is recorded, with the moment its
connection closed, so tests can assert what the model was asked and that a cancelled answer's response really was
closed. Plain asyncio, HTTP/1.1 with keep-alive: nothing here is shared with the app's own code.

Run alone (for daphne processes and the benchmark): `python -m tests.fake_openai --port 8001`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass
class Script:
    """What the server does with one request."""

    tokens: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "!"])
    finish_reason: str = "stop"
    status: int = 200
    interval: float = 0.0  # seconds between tokens
    drop_after: int | None = None  # cut the connection after this many tokens
    hang_after: int | None = None  # after this many tokens, send nothing more until the client closes
    usage: bool = True  # send the usage chunk that include_usage asks for
    end_after: int | None = None  # after this many tokens, end the body cleanly with no finish chunk and no [DONE]
    error_event: dict[str, Any] | None = None  # after the tokens, send this as a mid-stream `{"error": ...}` event
    error_body: dict[str, Any] | None = None  # the JSON body of a non-200 answer (OpenAI's error shape by default)


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    tokens_sent: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeOpenAI:
    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()
        self.default = Script()
        self.requests: list[Received] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        self.scripts.clear()
        self.default = Script()
        self.requests.clear()

    def then(self, *scripts: Script) -> None:
        """Queue what the next requests get, in order."""
        self.scripts.extend(scripts)

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request: Received | None = None
        try:
            while request := await _read_request(reader):
                self.requests.append(request)
                script = self.scripts.popleft() if self.scripts else self.default
                if not await self._answer(script, request, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is shutting down
        finally:
            if request is not None:
                request.closed.set()
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _answer(
        self, script: Script, request: Received, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if script.status != 200:
            error = {"error": {"message": f"fake error {script.status}", "type": "fake", "code": None}}
            body = json.dumps(script.error_body or error)
            writer.write(_head(script.status, "application/json", f"Content-Length: {len(body)}") + body.encode())
            await writer.drain()
            request.closed.set()
            return True
        writer.write(_head(200, "text/event-stream", "Transfer-Encoding: chunked"))
        chunks = _Chunks(request.body.get("model", "fake-model"))
        await _send(writer, chunks.delta({"role": "assistant", "content": ""}))
        for index, token in enumerate(script.tokens):
            if script.drop_after is not None and index == script.drop_after:
                writer.transport.abort()
                return False
            if script.hang_after is not None and index == script.hang_after:
                await reader.read()  # returns once the client closes the connection
                return False
            if script.end_after is not None and index == script.end_after:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                request.closed.set()
                return True
            if script.interval:
                await asyncio.sleep(script.interval)
            await _send(writer, chunks.delta({"content": token}))
            request.tokens_sent += 1
        if script.error_event is not None:
            await _send(writer, f"data: {json.dumps({'error': script.error_event})}\n\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            request.closed.set()
            return True
        await _send(writer, chunks.delta({}, finish_reason=script.finish_reason))
        if script.usage:
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.body.get("messages", []))
            await _send(writer, chunks.usage(prompt_tokens, len(script.tokens)))
        await _send(writer, "data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        request.closed.set()
        return True


class _Chunks:
    """Builds SSE events shaped like OpenAI's."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"chatcmpl-fake-{time.monotonic_ns()}"

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._event({"choices": [choice]})

    def usage(self, prompt_tokens: int, completion_tokens: int) -> str:
        totals = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        return self._event({"choices": [], "usage": {**totals, "total_tokens": prompt_tokens + completion_tokens}})

    def _event(self, fields: dict[str, Any]) -> str:
        envelope = {"id": self.id, "object": "chat.completion.chunk", "created": int(time.time()), "model": self.model}
        return f"data: {json.dumps({**envelope, **fields})}\n\n"


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    line = await reader.readline()
    if not line:
        return None
    _method, path, _version = line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    raw = await reader.readexactly(int(headers.get("content-length", 0)))
    return Received(path=path, headers=headers, body=json.loads(raw) if raw else {})


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
    options = parser.parse_args()
    fake = FakeOpenAI()
    fake.default = Script(
        tokens=[f" tok{i}" for i in range(options.tokens)], interval=1 / options.rate if options.rate else 0
    )
    await fake.start(options.port)
    print(f"fake OpenAI at {fake.base_url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main())
