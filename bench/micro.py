"""The single costs docs/performance.md quotes, each measured alone: reading one upstream chunk through the SDK
(httpx2; and the SDK's aiohttp transport if aiohttp is installed, with the SDK's line reader and with the app's),
asking for a streamed answer through the SDK and the way the app does (`provider.direct` on the app's connections),
channels' per-message `aclose_old_connections` hop, keeping and publishing a frame in Redis through redis-py's
pipeline and the way the app does (`deployment.batching`, with Redis at 127.0.0.1:6379), decoding one chunk with
`json` (and `orjson` if installed), and writing a frame through Twisted on daphne's reactor and on the app's
(`streaming.deployment.reactor`).

    python -m bench.micro

Each figure is CPU time of this process per operation, on uvloop as the server runs. Run on a quiet machine: these
are small numbers, and a busy neighbour core moves them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import stack
from bench.upstream import install_uvloop

CHUNK = (
    '{"id":"chatcmpl-bench-1","object":"chat.completion.chunk","created":1764130000,"model":"bench-model",'
    '"service_tier":"default","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":{"content":'
    '" 17@2833708086"},"logprobs":null,"finish_reason":null}],"usage":null}'
)


async def read_answer(client: Any, rate: float, tokens: int, *, app_reader: bool = False) -> int:
    """An answer read through the SDK's streaming response: SSE lines from the SDK and `json.loads` per chunk (how the
    app read it before 2026-11-26), or, with `app_reader`, the app's own: `DataLines` on the bytes, `orjson`."""
    request = client.chat.completions.with_streaming_response.create(
        model="bench-model",
        messages=[{"role": "user", "content": f"rate={rate:g} tokens={tokens}"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = 0
    async with request as response:
        if app_reader:
            import orjson

            from streaming.provider.sse import DataLines

            lines = DataLines()
            async for data in response.http_response.aiter_bytes():
                for payload in lines.feed(data):
                    if payload != b"[DONE]":
                        orjson.loads(payload)
                        chunks += 1
            return chunks
        async for line in response.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                json.loads(line[5:])
                chunks += 1
    return chunks


async def read_direct(provider: Any, rate: float, tokens: int) -> int:
    """An answer read as the app reads it: asked straight on its connections (`provider.direct`), `DataLines` on the
    bytes, `orjson`."""
    import orjson

    from streaming.provider import direct
    from streaming.provider.sse import DataLines

    messages = [{"role": "user", "content": f"rate={rate:g} tokens={tokens}"}]
    body = {"model": "bench-model", "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
    call = direct.Call("POST", "chat/completions", body=body)
    chunks, lines = 0, DataLines()
    async with direct.open_stream(call, provider) as reply:
        async for data in reply.chunks():
            for payload in lines.feed(data):
                if payload != b"[DONE]":
                    orjson.loads(payload)
                    chunks += 1
    return chunks


async def read_cost(base_url: str, transport: str, *, app_reader: bool = False) -> dict[str, float]:
    """CPU µs per chunk for 50 answers at 50 tokens/s (a chunk per TCP read) and at full speed (many per read),
    through the SDK on `transport` (httpx2's or aiohttp), or as the app reads them (`transport="app"`)."""
    import openai

    from streaming.provider import direct
    from streaming.provider.transport import SessionTransport

    options: dict[str, Any] = {"api_key": "sk-bench", "base_url": base_url, "max_retries": 0}
    if transport == "aiohttp":
        options["http_client"] = openai.DefaultAioHttpClient()
    client = openai.AsyncOpenAI(**options)
    if transport == "app":
        provider = direct.Provider.of_client(client, SessionTransport())
        read = functools.partial(read_direct, provider)
    else:
        read = functools.partial(read_answer, client, app_reader=app_reader)
    await asyncio.gather(*(read(0, 5) for _ in range(50)))  # connections and imports
    costs = {}
    for label, rate, tokens in (("50 streams at 50 tok/s", 50, 150), ("50 streams at full speed", 0, 1000)):
        started = time.process_time()
        chunks = sum(await asyncio.gather(*(read(rate, tokens) for _ in range(50))))
        costs[label] = (time.process_time() - started) / chunks * 1e6
    if transport == "app":
        await provider.transport.aclose()
    await client.close()
    return costs


async def request_cost(base_url: str) -> dict[str, float]:
    """CPU µs per answer of two tokens, 100 at a time: asked through the SDK's `with_streaming_response.create` on its
    aiohttp transport (as the app did before 2026-12-06), and as the app asks now, straight on its own connections
    (`provider.direct`, `provider.connections`), kept from the answers before or each a new one (as in a burst).
    Mostly the request: the answer is a role chunk, two tokens, the finish and the usage."""
    import openai

    from streaming.provider import direct
    from streaming.provider.transport import SessionTransport

    messages = [{"role": "user", "content": "rate=0 tokens=2"}]
    sdk = openai.AsyncOpenAI(
        api_key="sk-bench", base_url=base_url, max_retries=0, http_client=openai.DefaultAioHttpClient()
    )
    app = openai.AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    provider = direct.Provider.of_client(app, SessionTransport())
    call = direct.Call(
        "POST",
        "chat/completions",
        body={"model": "bench-model", "messages": messages, "stream": True, "stream_options": {"include_usage": True}},
    )

    async def through_sdk() -> None:  # the messages in `extra_body`, as the app sent them, skip the SDK's schema walk
        request = sdk.chat.completions.with_streaming_response.create(
            model="bench-model",
            messages=[],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"messages": messages},
        )
        async with request as response:
            async for _ in response.http_response.aiter_bytes():
                pass

    async def direct_request() -> None:
        async with direct.open_stream(call, provider) as reply:
            async for _ in reply.chunks():
                pass

    async def new_connections() -> None:  # the pool forgotten before the round: every answer on a new connection
        nonlocal provider
        await provider.transport.aclose()
        provider = direct.Provider.of_client(app, SessionTransport())

    costs = {}
    rounds = (
        ("through the SDK", through_sdk, None),
        ("direct", direct_request, None),
        ("direct, new connections", direct_request, new_connections),
    )
    for label, ask, before in rounds:
        await asyncio.gather(*(ask() for _ in range(100)))  # connections and imports
        spent, count = 0.0, 0
        for _ in range(5):
            if before is not None:
                await before()
            started = time.process_time()
            await asyncio.gather(*(ask() for _ in range(100)))
            spent += time.process_time() - started
            count += 100
        costs[label] = spent / count * 1e6
    await sdk.close()
    await provider.transport.aclose()
    return costs


async def hop_cost() -> dict[str, float]:
    """CPU µs of channels' `aclose_old_connections()`, which `AsyncConsumer.dispatch` awaits before every message."""
    from channels.db import aclose_old_connections

    for _ in range(200):
        await aclose_old_connections()
    count, costs = 3000, {}
    started = time.process_time()
    for _ in range(count):
        await aclose_old_connections()
    costs["one at a time"] = (time.process_time() - started) / count * 1e6

    async def some(n: int) -> None:
        for _ in range(n):
            await aclose_old_connections()

    started = time.process_time()
    await asyncio.gather(*(some(count // 20) for _ in range(20)))
    costs["20 queued at once"] = (time.process_time() - started) / count * 1e6
    return costs


async def write_cost() -> dict[str, float]:
    """CPU µs of a frame written by a Twisted connection, one frame per loop turn as a relayed stream writes them, on
    Twisted's asyncio reactor (a writer added and removed with the loop per frame) and on the one `chatproject.server`
    installs (`streaming.deployment.reactor`); a plain asyncio client in the same process reads them."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor
    from twisted.internet.protocol import Factory, Protocol

    from streaming.deployment.reactor import PromptWriteReactor

    loop, frame, count = asyncio.get_running_loop(), b"\x81\x3c" + b"x" * 60, 20_000

    class Writer(Protocol):
        def connectionMade(self) -> None:
            self.left = count
            self.write_one()

        def write_one(self) -> None:
            self.transport.write(frame)
            self.left -= 1
            if self.left:
                loop.call_soon(self.write_one)

    class Reader(asyncio.Protocol):
        def __init__(self) -> None:
            self.expected, self.done = count * len(frame), loop.create_future()

        def data_received(self, data: bytes) -> None:
            self.expected -= len(data)
            if self.expected <= 0 and not self.done.done():
                self.done.set_result(None)

    costs = {}
    for name, reactor_class in (
        ("Twisted's asyncio reactor", AsyncioSelectorReactor),
        ("this app's", PromptWriteReactor),
    ):
        reactor = reactor_class(loop)
        port = reactor.listenTCP(0, Factory.forProtocol(Writer), interface="127.0.0.1")
        started = time.process_time()
        transport, reader = await loop.create_connection(Reader, "127.0.0.1", port.getHost().port)
        await reader.done
        costs[name] = (time.process_time() - started) / count * 1e6
        transport.close()
        await port.stopListening().asFuture(loop)
    return costs


async def pipeline_cost() -> dict[str, float]:
    """CPU µs of a frame's two Redis commands (kept in its record, published), 400 streams each sending 25 frames at
    once, so that pipelines carry many frames as in a burst: through redis-py's pipeline, as the app sent them until
    60b699f, and through the app's `PipelineBatcher`."""
    import redis.asyncio as redis

    from streaming.deployment.batching import PipelineBatcher

    class ThroughRedisPyPipeline(PipelineBatcher):
        async def _round_trip(self, commands: list[Any]) -> list[Any]:
            async with self._client.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return await pipe.execute(raise_on_error=False)

    streams, frames, record, message = 400, 25, b"r" * 250, b"m" * 350

    async def cost(batcher: PipelineBatcher) -> float:
        async def one(stream: int) -> None:
            for _ in range(frames):
                await batcher.execute(("RPUSH", f"micro:{stream}", record), ("PUBLISH", f"micro.{stream}", message))

        await batcher.execute(("FLUSHDB",))
        started = time.process_time()
        await asyncio.gather(*(one(stream) for stream in range(streams)))
        spent = time.process_time() - started
        await batcher.execute(("FLUSHDB",))
        await batcher.aclose()
        return spent / (streams * frames) * 1e6

    costs: dict[str, float] = {}
    for _ in range(2):  # alternated; the second of each is kept, the first warms up
        for name, kind in (("redis-py's pipeline", ThroughRedisPyPipeline), ("the app's", PipelineBatcher)):
            costs[name] = await cost(kind(redis.Redis.from_url(stack.REDIS_URL)))
    return costs


def json_cost() -> dict[str, float]:
    decoders = {"json.loads": json.loads}
    try:
        import orjson

        decoders["orjson.loads"] = orjson.loads
    except ImportError:
        pass
    costs = {}
    for name, decode in decoders.items():
        started = time.process_time()
        for _ in range(100_000):
            decode(CHUNK)
        costs[name] = (time.process_time() - started) / 100_000 * 1e6
    return costs


async def measure(base_url: str) -> dict[str, dict[str, float]]:
    results = {"read a chunk, httpx2 (µs)": await read_cost(base_url, "httpx2")}
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        pass
    else:
        results["read a chunk, aiohttp transport (µs)"] = await read_cost(base_url, "aiohttp")
        results["read a chunk, aiohttp transport, the app's reader (µs)"] = await read_cost(
            base_url, "aiohttp", app_reader=True
        )
    results["read a chunk as the app does, on its connections (µs)"] = await read_cost(base_url, "app")
    results["ask for a streamed answer of two tokens (µs)"] = await request_cost(base_url)
    results["aclose_old_connections hop (µs)"] = await hop_cost()
    results["keep and publish a frame in Redis (µs)"] = await pipeline_cost()
    results["decode a chunk (µs)"] = json_cost()
    results["write a frame to a socket, and read it (µs)"] = await write_cost()
    return results


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-micro-secret-key-bench-micro-secret-key")
    import django

    django.setup()
    install_uvloop()
    workdir = Path(tempfile.mkdtemp(prefix="bench-micro-"))
    upstream = stack.Upstream(workdir)
    try:
        results = asyncio.run(measure(upstream.base_url))
    finally:
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    for title, costs in results.items():
        print(f"{title}: " + ", ".join(f"{name} {value:.1f}" for name, value in costs.items()))


if __name__ == "__main__":
    main()
