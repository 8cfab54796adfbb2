"""An OpenAI-compatible streaming upstream for the benchmark, fast enough not to be what is measured.

`POST /v1/chat/completions` with `"stream": true` answers with the SSE chunks OpenAI sends (role chunk, one chunk per
token, finish chunk, the usage chunk that `include_usage` asks for, `data: [DONE]`); `POST /v1/responses` with the
same answer as the Responses API's typed events (`Events`). Every token carries its index
and the moment it was written, ` <index>@<CLOCK_MONOTONIC µs>`, so a client in another process of this machine can
tell how long the token took to reach it (Linux's monotonic clock is one clock for the whole system) and whether
every token arrived once and in order.

An answer may think first: its reasoning tokens come before the content tokens, at the same rate, each in a chunk of
its own as `delta.reasoning_content` (DeepSeek's shape, with `content` null), numbered from 0 like the content's.
Usage counts them in `completion_tokens`, as providers do, and in `completion_tokens_details.reasoning_tokens`.

The prompt may set the pace for its own answer: `rate=50 tokens=200 reasoning=100` anywhere in the last message
(tokens per second, 0 for as fast as the reader takes them; content tokens per answer; reasoning tokens before them).
The command line sets the defaults.

It shares a 2-core machine with the server under test, so it is written for speed: plain `asyncio.Protocol` (no
stream objects), one timer per answer on the event loop's heap, chunk bytes built from pre-encoded halves, and every
token that is due written in one `write`. 800 answers at 50 tokens/s (40,000 writes/s) cost it about half a core,
most of it in the kernel's `send`. `GET /stats` tells how late it emitted, so a run can say when the upstream,
rather than the server, fell behind.

Run: `python -m bench.upstream --port 8001 [--rate 50] [--tokens 200] [--reasoning 0]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import time
from dataclasses import dataclass
from typing import Any

FULL_SPEED_BATCH = 32  # tokens per write when the answer streams as fast as the reader takes it
LATE_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 1000)
PACE = re.compile(r"\b(rate|tokens|reasoning)=(\d+(?:\.\d+)?)")


class Stats:
    """What the upstream did, cumulative: `GET /stats` returns it, and a run diffs two readings."""

    def __init__(self) -> None:
        self.requests = 0
        self.answers_finished = 0
        self.answers_cut = 0
        self.tokens = 0
        self.writes = 0
        self.late = dict.fromkeys(LATE_BUCKETS_MS, 0)  # emissions later than their schedule by >= N ms
        self.max_late_ms = 0.0

    def record_lateness(self, late_ns: int) -> None:
        late_ms = late_ns / 1e6
        if late_ms >= LATE_BUCKETS_MS[0]:
            for bucket in LATE_BUCKETS_MS:
                if late_ms >= bucket:
                    self.late[bucket] += 1
            self.max_late_ms = max(self.max_late_ms, late_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answers_finished": self.answers_finished,
            "answers_cut": self.answers_cut,
            "tokens": self.tokens,
            "writes": self.writes,
            "late_ms": {str(bucket): count for bucket, count in self.late.items()},
            "max_late_ms": round(self.max_late_ms, 3),
        }


class Chunks:
    """Pre-encoded SSE events for one answer: only the token text is formatted per token."""

    _ids = itertools.count(1)

    def __init__(self, model: str) -> None:
        envelope = (
            f'{{"id":"chatcmpl-bench-{next(self._ids)}","object":"chat.completion.chunk","created":{int(time.time())},'
            f'"model":{json.dumps(model)},"service_tier":"default","system_fingerprint":"fp_bench",'
        )
        self.envelope = envelope.encode()
        self.token_head = b"data: " + self.envelope + b'"choices":[{"index":0,"delta":{"content":"'
        self.token_tail = b'"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
        self.reasoning_head = (
            b"data: " + self.envelope + b'"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"'
        )

    def role(self) -> bytes:
        choice = (
            b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]'
        )
        return b"data: " + self.envelope + choice + b',"usage":null}\n\n'

    def tokens(self, first: int, count: int, stamp_us: int) -> bytes:
        head, tail = self.token_head, self.token_tail
        return b"".join(head + b" %d@%d" % (index, stamp_us) + tail for index in range(first, first + count))

    def reasoning(self, first: int, count: int, stamp_us: int) -> bytes:
        head, tail = self.reasoning_head, self.token_tail
        return b"".join(head + b" %d@%d" % (index, stamp_us) + tail for index in range(first, first + count))

    def ending(self, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> bytes:
        finish = b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n'
        counts: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": reasoning_tokens + completion_tokens,
            "total_tokens": prompt_tokens + reasoning_tokens + completion_tokens,
        }
        if reasoning_tokens:
            counts["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        usage = json.dumps(counts).encode()
        return (
            b"data: "
            + self.envelope
            + finish
            + b"data: "
            + self.envelope
            + b'"choices":[],"usage":'
            + usage
            + b"}\n\ndata: [DONE]\n\n"
        )


class Events:
    """The same answer as OpenAI's Responses API streams it (`POST /v1/responses`): typed events, each with its
    `sequence_number`, the text in `response.output_text.delta`, reasoning in `response.reasoning_summary_text.delta`,
    usage in `response.completed`, and no `[DONE]`. Only the sequence number and the token are formatted per token."""

    _ids = itertools.count(1)

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"resp_bench_{next(self._ids)}"
        self.sequence = itertools.count()
        self.token_head = (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
        )
        self.token_middle = b',"item_id":"msg_bench","output_index":1,"content_index":0,"delta":"'
        self.token_tail = b'","logprobs":[]}\n\n'
        self.reasoning_head = (
            b"event: response.reasoning_summary_text.delta\n"
            b'data: {"type":"response.reasoning_summary_text.delta","sequence_number":'
        )
        self.reasoning_middle = b',"item_id":"rs_bench","output_index":0,"summary_index":0,"delta":"'

    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": next(self.sequence), **fields}
        return b"event: %s\ndata: %s\n\n" % (kind.encode(), json.dumps(event).encode())

    def _response(self, status: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": self.model,
            "output": [],
            "usage": usage,
        }

    def role(self) -> bytes:
        return (
            self._event("response.created", response=self._response("in_progress"))
            + self._event("response.in_progress", response=self._response("in_progress"))
            + self._event(
                "response.output_item.added",
                output_index=1,
                item={
                    "id": "msg_bench",
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                },
            )
            + self._event(
                "response.content_part.added",
                item_id="msg_bench",
                output_index=1,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
        )

    def tokens(self, first: int, count: int, stamp_us: int) -> bytes:
        head, middle, tail, sequence = self.token_head, self.token_middle, self.token_tail, self.sequence
        return b"".join(
            head + b"%d" % next(sequence) + middle + b" %d@%d" % (index, stamp_us) + tail
            for index in range(first, first + count)
        )

    def reasoning(self, first: int, count: int, stamp_us: int) -> bytes:
        head, middle, tail, sequence = self.reasoning_head, self.reasoning_middle, b'"}\n\n', self.sequence
        return b"".join(
            head + b"%d" % next(sequence) + middle + b" %d@%d" % (index, stamp_us) + tail
            for index in range(first, first + count)
        )

    def ending(self, prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> bytes:
        output = reasoning_tokens + completion_tokens
        usage = {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": prompt_tokens + output,
        }
        return self._event("response.completed", response=self._response("completed", usage))


def http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


@dataclass(frozen=True)
class Pace:
    rate: float  # tokens per second, reasoning and content alike; 0: as fast as the reader takes them
    tokens: int  # content tokens
    reasoning: int = 0  # reasoning tokens, before the content


def pace_of(body: dict[str, Any], default: Pace) -> Pace:
    """The answer's pace: from `rate=`, `tokens=` and `reasoning=` in the last message, else the defaults."""
    messages = _messages(body) or [{}]
    found = dict(PACE.findall(str(messages[-1].get("content", ""))))
    return Pace(
        rate=float(found.get("rate", default.rate)),
        tokens=int(float(found.get("tokens", default.tokens))),
        reasoning=int(float(found.get("reasoning", default.reasoning))),
    )


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation of a chat request (`messages`) or of a Responses request (`input`, items or a string)."""
    if "messages" in body:
        return body["messages"]
    items = body.get("input") or []
    return [{"content": items}] if isinstance(items, str) else [item for item in items if "content" in item]


class Answer:
    """One streamed answer on one connection: a timer per answer, every due token written at once.

    Tokens are counted over the whole answer, reasoning first: index `n` is reasoning token `n` while `n` is below
    `reasoning`, and content token `n - reasoning` after it.
    """

    def __init__(self, conn: Connection, *, model: str, pace: Pace, prompt_tokens: int, api: str = "chat") -> None:
        self.conn = conn
        self.loop = conn.loop
        self.chunks = Events(model) if api == "responses" else Chunks(model)
        self.reasoning = pace.reasoning
        self.total = pace.reasoning + pace.tokens
        self.prompt_tokens = prompt_tokens
        self.period_ns = int(1e9 / pace.rate) if pace.rate > 0 else 0
        self.next_index = 0
        self.timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self.start_ns = time.monotonic_ns()
        self.start_loop = self.loop.time()

    def begin(self, head: bytes) -> None:
        self.conn.transport.write(head + http_chunk(self.chunks.role()))
        self.emit()

    def emit(self) -> None:
        """Write every token due by now: one at a time when on schedule, several at once after a late wakeup."""
        self.timer = None
        if self.conn.paused:
            return  # resumed by `Connection.resume_writing`
        now = time.monotonic_ns()
        if self.period_ns:
            due = min(self.total, (now - self.start_ns) // self.period_ns + 1)
            count = max(1, due - self.next_index)
            self.conn.stats.record_lateness(now - (self.start_ns + self.next_index * self.period_ns))
        else:
            count = min(FULL_SPEED_BATCH, self.total - self.next_index)
        if count > 0:
            self.conn.transport.write(http_chunk(self._chunks(self.next_index, count, now // 1000)))
            self.conn.stats.tokens += count
            self.conn.stats.writes += 1
            self.next_index += count
        if self.next_index >= self.total:
            self.finish()
        elif self.period_ns:
            self.timer = self.loop.call_at(self.start_loop + self.next_index * self.period_ns / 1e9, self.emit)
        elif not self.conn.paused:
            self.timer = self.loop.call_soon(self.emit)  # let the other answers have their turn

    def _chunks(self, first: int, count: int, stamp_us: int) -> bytes:
        """The chunks of tokens `first` to `first + count` of the whole answer: reasoning, then content."""
        reasoning = self.reasoning
        if first >= reasoning:  # the common case: content only
            return self.chunks.tokens(first - reasoning, count, stamp_us)
        thinking = min(count, reasoning - first)
        chunks = self.chunks.reasoning(first, thinking, stamp_us)
        return chunks + self.chunks.tokens(0, count - thinking, stamp_us) if count > thinking else chunks

    def finish(self) -> None:
        ending = http_chunk(self.chunks.ending(self.prompt_tokens, self.total - self.reasoning, self.reasoning))
        self.conn.transport.write(ending + b"0\r\n\r\n")
        self.conn.stats.answers_finished += 1
        self.conn.answer_done()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Connection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough for the OpenAI SDK: one request at a time, each answered in full."""

    def __init__(self, server: Upstream) -> None:
        self.server = server
        self.stats = server.stats
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.answer: Answer | None = None
        self.paused = False
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport, asyncio's or uvloop's
        transport.set_write_buffer_limits(high=256 * 1024)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None:
            self.answer.cancel()
            self.answer = None
            self.stats.answers_cut += 1

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.answer is not None and self.answer.timer is None:
            self.answer.emit()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.answer is None and (request := self._take_request()) is not None:
            self._dispatch(*request)

    def answer_done(self) -> None:
        self.answer = None
        if self.buffer:
            self.data_received(b"")

    def _take_request(self) -> tuple[str, str, bytes] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        method, path, _version = head[0].split(" ", 2)
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        return method, path.split("?", 1)[0], body

    def _dispatch(self, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path.endswith("/chat/completions"):
            self._complete(json.loads(body or b"{}"), "chat")
        elif method == "POST" and path.endswith("/responses"):
            self._complete(json.loads(body or b"{}"), "responses")
        elif method == "GET" and path == "/stats":
            self._respond(200, json.dumps(self.stats.as_dict()).encode())
        else:
            self._respond(404, b'{"error":{"message":"not found","type":"bench"}}')

    def _complete(self, body: dict[str, Any], api: str) -> None:
        if not body.get("stream"):
            self._respond(400, b'{"error":{"message":"the bench upstream only streams","type":"bench"}}')
            return
        self.stats.requests += 1
        pace = pace_of(body, self.server.pace)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in _messages(body))
        model = str(body.get("model", "bench-model"))
        self.answer = Answer(self, model=model, pace=pace, prompt_tokens=prompt_tokens, api=api)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        self.answer.begin(head)

    def _respond(self, status: int, payload: bytes) -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        self.transport.write(head.encode() + payload)


class Upstream:
    def __init__(self, *, pace: Pace) -> None:
        self.pace = pace
        self.stats = Stats()

    async def serve(self, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: Connection(self), host, port, backlog=4096)


def install_uvloop() -> bool:
    """uvloop roughly halves the event loop's cost per write; the bench works without it, only less far."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


async def _main(options: argparse.Namespace) -> None:
    pace = Pace(rate=options.rate, tokens=options.tokens, reasoning=options.reasoning)
    server = await Upstream(pace=pace).serve(options.host, options.port)
    port = server.sockets[0].getsockname()[1]
    print(f"bench upstream listening on http://{options.host}:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--rate", type=float, default=50, help="tokens per second per answer (0: as fast as read)")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--reasoning", type=int, default=0, help="reasoning tokens before each answer's content")
    parser.add_argument("--no-uvloop", action="store_true", help="use the standard asyncio event loop")
    options = parser.parse_args()
    if not options.no_uvloop:
        install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(options))


if __name__ == "__main__":
    main()
