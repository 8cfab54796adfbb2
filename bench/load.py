"""The load generator: C clients, each sending one prompt, timing and checking every token of the answer.

Two modes share the accounting (`Tally`):
- `relay`: WebSocket clients of the real server (daphne), speaking docs/protocol.md;
- `direct`: the `openai` SDK's `AsyncOpenAI` streaming straight from the upstream, no relay at all. This is the
  floor: what a token costs to reach a Python client with no server in between.

Each token of the bench upstream is ` <index>@<CLOCK_MONOTONIC µs when written>`, so for every token a client gets
the added latency is its receipt time minus that stamp, and the text of the whole answer proves that every token
arrived exactly once and in order. An answer may reason first (`Plan.reasoning`): its reasoning tokens are numbered
and stamped the same way, count in the latency like the answer's, and their text is checked the same way. `seq` is
checked for loss, duplicates and reordering over the deltas, and `pos` over every kept frame (reasoning and deltas
together), which is how a client of protocol 2 sees that nothing of any kind went missing or came out of order.

The relay clients are a minimal WebSocket client on `asyncio.Protocol` rather than the `websockets` library: at
40,000 frames/s a library's per-message machinery (futures, queues, a task per connection) would take a core of its
own on a 2-core machine that also runs the server. Clients may be split over several processes (`procs`); every
process reports its own CPU time, so a run can tell when the generator, not the server, was the bottleneck.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import re
import resource
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ANSWER_TEXT = re.compile(r"(?: \d+@\d+)*")
CONNECT_CONCURRENCY = 64  # handshakes in flight at once, so a thousand sockets do not all time out together


def now_us() -> int:
    """The clock the upstream stamps tokens with: CLOCK_MONOTONIC, one clock for every process of the machine."""
    return time.monotonic_ns() // 1000


def prompt_content(rate: float, tokens: int, reasoning: int = 0) -> str:
    """The prompt tells the bench upstream how to pace this answer (see bench.upstream)."""
    content = f"Benchmark answer, please: rate={rate:g} tokens={tokens}"
    return content + f" reasoning={reasoning}" if reasoning else content


@dataclass
class Plan:
    """One load run: who to talk to, how many clients, and what answers they ask for."""

    mode: str  # "relay" or "direct"
    targets: list[str]  # ws://host:port/ws/chat/ per worker (clients are dealt round-robin), or the upstream base URL
    clients: int
    rate: float  # tokens per second per answer, 0 = as fast as possible
    tokens: int  # tokens per answer
    ramp: float  # seconds over which the prompts are spread evenly
    grace: float  # seconds past the expected end to wait for every answer to end
    procs: int = 1
    reasoning: int = 0  # reasoning tokens before each answer's text, at the same rate
    model: str = "bench-model"
    floor: str = "lines"  # direct mode: "lines" (as the app reads the upstream) or "typed" (the SDK's chunk models)

    @property
    def answer_seconds(self) -> float:
        return (self.reasoning + self.tokens) / self.rate if self.rate else 0.0

    def deadline(self, t0: float) -> float:
        return t0 + self.ramp + self.answer_seconds + self.grace


@dataclass
class Order:
    """Numbers that must arrive as 1, 2, 3... each once: the `seq` of a stream's deltas, or the `pos` of its frames."""

    seen: set[int] = field(default_factory=set)
    highest: int = 0
    duplicates: int = 0
    reordered: int = 0
    missing: int = 0  # frames that carried no number at all

    def add(self, number: int | None) -> bool:
        """Count one frame's number; False when the frame is a duplicate (or unnumbered), to be left out."""
        if number is None:
            self.missing += 1
            return False
        if number in self.seen:
            self.duplicates += 1
            return False
        if number < self.highest:
            self.reordered += 1
        self.highest = max(self.highest, number)
        self.seen.add(number)
        return True

    def lost(self, last: int | None = None) -> int:
        """Numbers up to `last` (default: the highest seen) that never came, and frames that had none."""
        last = self.highest if last is None else last
        return self.missing + sum(1 for number in range(1, last + 1) if number not in self.seen)


@dataclass
class Tally:
    """One client's answer as it arrives: latency of every token, and the checks that nothing went missing."""

    expected_tokens: int
    latencies: list[int]  # shared by the process's clients: µs per token
    expected_reasoning: int = 0
    sent_at: int = 0
    first_output_at: int | None = None  # the first reasoning or delta frame
    first_delta_at: int | None = None
    ended_at: int | None = None
    end: str | None = None  # "done", an error code, "closed" or "timeout"
    done_seq: int | None = None
    completion_tokens: int | None = None
    server_ttft_ms: int | None = None  # the relay's own count, in `done`: prompt accepted to first answer text
    server_first_output_ms: int | None = None  # ... and to its first output of any kind
    deltas: int = 0
    reasoning_frames: int = 0
    seqs: Order = field(default_factory=Order)  # the deltas' `seq`
    places: Order = field(default_factory=Order)  # every kept frame's `pos`, across kinds
    texts: dict[int, str] = field(default_factory=dict)  # by seq
    reasonings: dict[int, str] = field(default_factory=dict)  # by pos
    told_busy: bool = False  # the server sent `busy` for this answer: it said it was overloaded

    def delta(self, seq: int, text: str, received: int, *, pos: int | None) -> None:
        self.places.add(pos)
        if not self.seqs.add(seq):
            return
        self.texts[seq] = text
        self.deltas += 1
        if self.first_delta_at is None:
            self.first_delta_at = received
        self._output(text, received)

    def reasoning(self, pos: int | None, text: str, received: int) -> None:
        if not self.places.add(pos):
            return
        self.reasonings[pos] = text  # type: ignore[index]  # `add` refuses a frame without `pos`
        self.reasoning_frames += 1
        self._output(text, received)

    def _output(self, text: str, received: int) -> None:
        if self.first_output_at is None:
            self.first_output_at = received
        append = self.latencies.append
        for token in text.split():
            append(received - int(token.partition("@")[2]))

    def finish(self, end: str, received: int, *, seq: int | None = None, completion_tokens: int | None = None) -> None:
        if self.end is None:
            self.end, self.ended_at, self.done_seq, self.completion_tokens = end, received, seq, completion_tokens

    def report(self) -> dict[str, Any]:
        """What the run needs of this client: times, counts and whether its answer (and its reasoning) was exactly
        what was sent. `done` says how many deltas there were; a lost last reasoning frame shows in its text."""
        text = "".join(self.texts[seq] for seq in sorted(self.texts))
        reasoning = "".join(self.reasonings[pos] for pos in sorted(self.reasonings))
        exact = text_is_answer(text, self.expected_tokens) and text_is_answer(reasoning, self.expected_reasoning)
        return {
            "end": self.end or "timeout",
            "ttfo_us": _since(self.sent_at, self.first_output_at),
            "ttfd_us": _since(self.sent_at, self.first_delta_at),
            "server_ttft_us": _us(self.server_ttft_ms),
            "server_first_output_us": _us(self.server_first_output_ms),
            "duration_us": _since(self.sent_at, self.ended_at),
            "ended_at_us": self.ended_at,
            "deltas": self.deltas,
            "reasoning_frames": self.reasoning_frames,
            "tokens": len(text.split()),
            "reasoning_tokens": len(reasoning.split()),
            "lost": self.seqs.lost(self.done_seq),
            "duplicates": self.seqs.duplicates,
            "reordered": self.seqs.reordered,
            "pos_lost": self.places.lost(),
            "pos_duplicates": self.places.duplicates,
            "pos_reordered": self.places.reordered,
            "told_busy": self.told_busy,
            "text_ok": self.end == "done" and exact,
            "usage_ok": self.completion_tokens in (None, self.expected_reasoning + self.expected_tokens),
        }


def _since(start: int, moment: int | None) -> int | None:
    return None if moment is None else moment - start


def _us(ms: int | None) -> int | None:
    return None if ms is None else ms * 1000


def text_is_answer(text: str, tokens: int) -> bool:
    """True when the text is exactly tokens 0..tokens-1 of the upstream, each once, in order, nothing else."""
    if not ANSWER_TEXT.fullmatch(text):
        return False
    indexes = [int(token.partition("@")[0]) for token in text.split()]
    return indexes == list(range(tokens))


# --- The relay's clients: a minimal WebSocket client ------------------------------------------------------------------


class WsClient(asyncio.Protocol):
    """One chat socket: the handshake, unmasked server frames in, masked client frames out, one prompt."""

    def __init__(self, url: str, tally: Tally) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.tally = tally
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.upgraded = False
        self.key = base64.b64encode(os.urandom(16))
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stream: str | None = None
        self.transport: asyncio.Transport | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, self.host, self.port)
        await self.ready

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        origin = f"http://{self.host}:{self.port}"
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {origin}\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"socket closed before ready: {exc!r}"))
        self._ended("closed", now_us())

    def send_prompt(self, content: str) -> None:
        self.tally.sent_at = now_us()
        self.send_text(json.dumps({"type": "prompt", "request": "r1", "content": content}))

    def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send_frame(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        received = now_us()
        self.buffer += data
        if not self.upgraded and not self._handshake():
            return
        self._read_frames(received)

    def _handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end])
        del self.buffer[: end + 4]
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
        if not head.startswith(b"HTTP/1.1 101") or accept not in head:
            self.ready.set_exception(ConnectionError(f"handshake refused: {head[:200]!r}"))
            self.transport.close()
            return False
        self.upgraded = True
        return True

    def _read_frames(self, received: int) -> None:
        buffer, pos, size = self.buffer, 0, len(self.buffer)
        while size - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            self._on_frame(first, bytes(buffer[pos + head : end]), received)
            pos = end
        if pos:
            del buffer[:pos]

    def _on_frame(self, first: int, payload: bytes, received: int) -> None:
        opcode, fin = first & 0x0F, first & 0x80
        if opcode in (0x0, 0x1):
            self.fragments.append(payload)
            if fin:
                message, self.fragments = b"".join(self.fragments), []
                self._on_message(json.loads(message), received)
        elif opcode == 0x9:
            self._send_frame(0xA, payload)  # daphne closes sockets that do not answer its pings
        elif opcode == 0x8:
            self._ended("closed", received)
            self.transport.close()

    def _on_message(self, frame: dict[str, Any], received: int) -> None:
        kind = frame["type"]
        if kind == "delta":
            if frame["stream"] == self.stream:
                self.tally.delta(frame["seq"], frame["text"], received, pos=frame.get("pos"))
        elif kind == "reasoning":
            if frame["stream"] == self.stream:
                self.tally.reasoning(frame.get("pos"), frame["text"], received)
        elif kind == "start":
            self.stream = frame["stream"]
        elif kind == "busy" and frame["stream"] == self.stream:
            self.tally.told_busy = True
        elif kind == "done":
            usage = frame.get("usage") or {}
            self.tally.server_ttft_ms = frame.get("ttft_ms")
            self.tally.server_first_output_ms = frame.get("first_output_ms")
            self.tally.finish("done", received, seq=frame["seq"], completion_tokens=usage.get("completion_tokens"))
            self._ended("done", received)
        elif kind == "error":
            self.tally.finish(frame.get("code", "error"), received)
            self._ended(frame.get("code", "error"), received)
        elif kind == "ready" and not self.ready.done():
            self.ready.set_result(None)

    def _ended(self, end: str, received: int) -> None:
        self.tally.finish(end, received)
        if not self.ended.done():
            self.ended.set_result(None)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        size = len(payload)
        if size < 126:
            head = bytes([0x80 | opcode, 0x80 | size])
        elif size < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
        mask = os.urandom(4)
        keystream = (mask * (size // 4 + 1))[:size]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(size, "big")
        self.transport.write(head + mask + masked)


async def open_sockets(urls: list[str], tallies: list[Tally]) -> list[WsClient]:
    """Open one socket per tally (to the URL of the same index), each past its `ready` frame."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(url: str, tally: Tally) -> WsClient:
        client = WsClient(url, tally)
        async with gate:
            await asyncio.wait_for(client.open(), 30)
        return client

    return list(await asyncio.gather(*(one(url, tally) for url, tally in zip(urls, tallies, strict=True))))


# --- The floor: the SDK straight from the upstream --------------------------------------------------------------------


class DirectClient:
    """One answer read with `AsyncOpenAI` from the upstream; each chunk with text counts as one delta, each chunk with
    `reasoning_content` as one reasoning frame, numbered (`pos`) in the order they came, as the relay numbers them.

    `floor="lines"` reads it the way the app does (the SDK's request and streaming response over its aiohttp
    transport, SSE lines decoded with orjson); `floor="typed"` iterates the SDK's `ChatCompletionChunk` models, which
    cost about ten times more CPU per chunk.
    """

    def __init__(self, client: Any, plan: Plan, tally: Tally) -> None:
        self.client, self.plan, self.tally = client, plan, tally
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Future[None] | None = None
        self.seq = 0
        self.pos = 0
        self.usage: int | None = None

    def send_prompt(self, content: str) -> None:
        self.tally.sent_at = now_us()
        self.task = asyncio.ensure_future(self._read(content))

    async def _read(self, content: str) -> None:
        request = {
            "model": self.plan.model,
            "messages": [{"role": "user", "content": content}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            if self.plan.floor == "typed":
                await self._read_typed(request)
            else:
                await self._read_lines(request)
            self.tally.finish("done", now_us(), seq=self.seq, completion_tokens=self.usage)
        except Exception as exc:
            self.tally.finish(type(exc).__name__, now_us())
        finally:
            if not self.ended.done():
                self.ended.set_result(None)

    async def _read_lines(self, request: dict[str, Any]) -> None:
        async with self.client.chat.completions.with_streaming_response.create(**request) as response:
            async for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                chunk = orjson.loads(data)
                received = now_us()
                if chunk.get("usage"):
                    self.usage = chunk["usage"]["completion_tokens"]
                choices = chunk.get("choices")
                if not choices:
                    continue
                delta = choices[0].get("delta") or {}
                if reasoning := delta.get("reasoning_content"):
                    self._reasoning(reasoning, received)
                if text := delta.get("content"):
                    self._delta(text, received)

    async def _read_typed(self, request: dict[str, Any]) -> None:
        stream = await self.client.chat.completions.create(**request)
        async with stream:
            async for chunk in stream:
                received = now_us()
                if chunk.usage is not None:
                    self.usage = chunk.usage.completion_tokens
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if reasoning := getattr(delta, "reasoning_content", None):  # not a field of the SDK's model: an extra
                    self._reasoning(reasoning, received)
                if delta.content:
                    self._delta(delta.content, received)

    def _delta(self, text: str, received: int) -> None:
        self.seq += 1
        self.pos += 1
        self.tally.delta(self.seq, text, received, pos=self.pos)

    def _reasoning(self, text: str, received: int) -> None:
        self.pos += 1
        self.tally.reasoning(self.pos, text, received)

    def close(self) -> None:
        pass


# --- One generator process --------------------------------------------------------------------------------------------


def _process_main(plan: Plan, indexes: list[int], conn: Any) -> None:
    from bench.upstream import install_uvloop

    install_uvloop()
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)[1:] * 2)
    asyncio.run(_process_run(plan, indexes, conn))


async def _process_run(plan: Plan, indexes: list[int], conn: Any) -> None:
    """Connect, tell the parent, wait for the common start time, send each prompt at its moment, report."""
    loop = asyncio.get_running_loop()
    latencies: list[int] = []
    tallies = [
        Tally(expected_tokens=plan.tokens, expected_reasoning=plan.reasoning, latencies=latencies) for _ in indexes
    ]
    try:
        clients = await _make_clients(plan, indexes, tallies)
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    t0 = await loop.run_in_executor(None, conn.recv)  # time.monotonic() at which the first prompt is due
    cpu_start = time.process_time()
    content = prompt_content(plan.rate, plan.tokens, plan.reasoning)
    for index, client in zip(indexes, clients, strict=True):
        loop.call_at(_loop_time(loop, t0 + plan.ramp * index / plan.clients), client.send_prompt, content)
    remaining = max(0.1, plan.deadline(t0) - time.monotonic())
    await asyncio.wait([c.ended for c in clients], timeout=remaining)
    cpu = time.process_time() - cpu_start
    for client in clients:
        client.close()
    conn.send(("result", {"clients": [t.report() for t in tallies], "latencies_us": latencies, "cpu": cpu}))


async def _make_clients(plan: Plan, indexes: list[int], tallies: list[Tally]) -> list[Any]:
    if plan.mode == "relay":
        return await open_sockets([plan.targets[i % len(plan.targets)] for i in indexes], tallies)
    import openai

    sdk = openai.AsyncOpenAI(
        api_key="sk-bench",
        base_url=plan.targets[0],
        max_retries=0,
        timeout=60,
        http_client=openai.DefaultAioHttpClient(),  # as the app reads the provider
    )
    warm = DirectClient(sdk, plan, Tally(expected_tokens=1, latencies=[]))
    warm.send_prompt(prompt_content(0, 1))  # the SDK builds its types and its client on first use: not measured
    await warm.ended
    return [DirectClient(sdk, plan, tally) for tally in tallies]


def _loop_time(loop: asyncio.AbstractEventLoop, at_monotonic: float) -> float:
    """The event loop's clock may not be time.monotonic() (uvloop's is not): convert."""
    return loop.time() + (at_monotonic - time.monotonic())


# --- The whole run: processes, start signal, merged results -----------------------------------------------------------


@dataclass
class Started:
    """A run's generator processes, connected and waiting for the start signal."""

    plan: Plan
    processes: list[Any]
    pipes: list[Any]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]


def start(plan: Plan) -> Started:
    """Start the generator processes and wait until every client is connected (relay: past `ready`)."""
    context = multiprocessing.get_context("fork")  # fast, and safe here: the parent runs no thread while it forks
    procs = max(1, min(plan.procs, plan.clients))
    processes, pipes = [], []
    for n in range(procs):
        parent, child = context.Pipe()
        indexes = list(range(n, plan.clients, procs))
        process = context.Process(target=_process_main, args=(plan, indexes, child), daemon=True)
        process.start()
        processes.append(process)
        pipes.append(parent)
    started = Started(plan, processes, pipes)
    for pipe, process in zip(pipes, processes, strict=True):
        kind, detail = _receive(pipe, process, timeout=60)
        if kind != "ready":
            stop(started)
            raise RuntimeError(f"a load generator process could not connect its clients: {detail}")
    return started


def _receive(pipe: Any, process: Any, *, timeout: float) -> tuple[str, Any]:
    """The next message of a generator process, or ("failed", why) if it died or said nothing in time."""
    deadline = time.monotonic() + timeout
    while not pipe.poll(0.2):
        if not process.is_alive():
            return "failed", f"exited with code {process.exitcode}"
        if time.monotonic() > deadline:
            return "failed", f"said nothing for {timeout:.0f} s"
    return pipe.recv()


def go(started: Started, lead: float = 0.2) -> tuple[float, list[dict[str, Any]]]:
    """Send the start signal; return the start time (monotonic) and each process's result once all are in."""
    t0 = time.monotonic() + lead
    for pipe in started.pipes:
        pipe.send(t0)
    results = []
    wait = started.plan.deadline(t0) - time.monotonic() + 30
    try:
        for pipe, process in zip(started.pipes, started.processes, strict=True):
            kind, result = _receive(pipe, process, timeout=wait)
            if kind != "result":
                raise RuntimeError(f"a load generator process failed: {result}")
            results.append(result)
    finally:
        stop(started)
    return t0, results


def stop(started: Started) -> None:
    for process in started.processes:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


# --- Idle sockets -----------------------------------------------------------------------------------------------------


async def measure_idle(
    urls: list[str], count: int, server_pids: list[int], *, warmup: int = 100, idle_seconds: float = 4
) -> dict[str, Any]:
    """What an open, idle socket costs the server: RSS growth per socket, and CPU while they idle.

    A first batch of sockets warms the server up (imports, pools, caches), so the growth measured afterwards is the
    sockets' own. The sockets then idle for a few seconds, long enough for the worker's presence heartbeat to run.
    """
    from bench.procstat import cpu_seconds, rss_bytes

    def rss() -> int:
        return sum(rss_bytes(pid) for pid in server_pids)

    def tallies(n: int) -> list[Tally]:
        return [Tally(expected_tokens=0, latencies=[]) for _ in range(n)]

    warmup = min(warmup, count)
    warm = await open_sockets([urls[i % len(urls)] for i in range(warmup)], tallies(warmup))
    await asyncio.sleep(min(1, idle_seconds))
    before = rss()
    opened_at = time.monotonic()
    sockets = await open_sockets([urls[i % len(urls)] for i in range(count)], tallies(count))
    connect_seconds = time.monotonic() - opened_at
    await asyncio.sleep(min(1, idle_seconds))
    cpu_before, idle_from = sum(cpu_seconds(pid) for pid in server_pids), time.monotonic()
    await asyncio.sleep(idle_seconds)
    idle_cpu = sum(cpu_seconds(pid) for pid in server_pids) - cpu_before
    idle_seconds = time.monotonic() - idle_from
    after = rss()
    for client in warm + sockets:
        client.close()
    return {
        "sockets": count,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "kb_per_socket": round((after - before) / count / 1024, 1),
        "connects_per_s": round(count / connect_seconds, 1),
        "idle_cpu_share": round(idle_cpu / idle_seconds, 3),
    }


# --- Summary ----------------------------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of values already sorted."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]


def summarize(plan: Plan, t0: float, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The clients' side of a run: correctness counts, latency percentiles (ms), rates over the streaming window.

    `tokens` and `deltas` are the answers' text; `reasoning_tokens` and `reasoning_frames` their reasoning; `frames`
    and `output_tokens` both together (without reasoning, the same as `deltas` and `tokens`).
    """
    clients = [c for r in results for c in r["clients"]]
    latencies = sorted(lat for r in results for lat in r["latencies_us"])
    ends = [c["ended_at_us"] / 1e6 for c in clients if c["ended_at_us"] is not None]
    if len(ends) < len(clients):  # some answers were still streaming when the run gave up on them
        ends.append(plan.deadline(t0))
    window_end = max([*ends, t0 + 1e-3])
    ended = {}
    for client in clients:
        ended[client["end"]] = ended.get(client["end"], 0) + 1
    tokens, reasoning_tokens = sum(c["tokens"] for c in clients), sum(c["reasoning_tokens"] for c in clients)
    deltas, reasoning_frames = sum(c["deltas"] for c in clients), sum(c["reasoning_frames"] for c in clients)
    output_tokens, frames = tokens + reasoning_tokens, deltas + reasoning_frames
    seconds = window_end - t0
    ms = lambda us: None if us is None else round(us / 1000, 3)  # noqa: E731

    def quantiles(key: str) -> dict[str, float | None]:
        values = sorted(c[key] for c in clients if c[key] is not None)
        return {name: ms(percentile(values, q)) for name, q in QUANTILES.items()}

    return {
        "clients": len(clients),
        "completed": ended.get("done", 0),
        "ends": ended,
        **{key: sum(c[key] for c in clients) for key in ORDER_CHECKS},
        "told_busy": sum(1 for c in clients if c["told_busy"]),
        "bad_text": sum(1 for c in clients if c["end"] == "done" and not c["text_ok"]),
        "bad_usage": sum(1 for c in clients if not c["usage_ok"]),
        "tokens": tokens,
        "deltas": deltas,
        "reasoning_tokens": reasoning_tokens,
        "reasoning_frames": reasoning_frames,
        "output_tokens": output_tokens,
        "frames": frames,
        "tokens_per_delta": round(tokens / deltas, 2) if deltas else None,
        "tokens_per_frame": round(output_tokens / frames, 2) if frames else None,
        "latency_ms": {name: ms(percentile(latencies, q)) for name, q in QUANTILES.items()},
        "ttfo_ms": quantiles("ttfo_us"),
        "ttfd_ms": quantiles("ttfd_us"),
        "server_first_output_ms": quantiles("server_first_output_us"),
        "server_ttft_ms": quantiles("server_ttft_us"),
        "window_start": t0,
        "window_end": window_end,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(output_tokens / seconds, 1),
        "deltas_per_s": round(deltas / seconds, 1),
        "frames_per_s": round(frames / seconds, 1),
        "load_cpu_s": round(sum(r["cpu"] for r in results), 3),
        "load_procs": len(results),
    }


QUANTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "max": 1.0}
# Counted per client: the deltas' `seq`, then every kept frame's `pos`.
ORDER_CHECKS = ("lost", "duplicates", "reordered", "pos_lost", "pos_duplicates", "pos_reordered")
PROBLEMS = (*ORDER_CHECKS, "bad_text", "bad_usage")


def passed(summary: dict[str, Any]) -> bool:
    """Every client got its whole answer (and reasoning), exactly once and in order."""
    return summary["completed"] == summary["clients"] and not any(summary[p] for p in PROBLEMS)
