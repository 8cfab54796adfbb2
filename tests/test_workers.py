"""Many workers, one conversation: real daphne processes sharing the machine's Redis and a real database.

The topology of docker-compose.yml without containers: two workers, each on its own port, one Redis (the pub/sub
channel layer and the replay buffer), one database (PostgreSQL when DATABASE_URL names one). The model provider is
the fake one of the test process, so a test scripts each answer and sees whether its connection was closed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.conftest import Socket, prompt, texts
from tests.fake_openai import FakeOpenAI, Script
from tests.live import ROOT, Daphne, close_code, drop_live_database, live_database_url, workers_env

pytestmark = pytest.mark.redis

TOKENS = [f" w{i}" for i in range(40)]


@pytest.fixture(scope="module")
def cluster_env(redis_url: str, tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI) -> Iterator:
    workdir = tmp_path_factory.mktemp("workers")
    database_url = live_database_url(workdir)
    env = workers_env(
        workdir,
        database_url,
        redis_url=redis_url,
        upstream=fake_openai_server.base_url,
        STREAMING_WORKER_TIMEOUT="3",
    )
    yield env, workdir
    drop_live_database(database_url)


def start_worker(name: str, cluster_env: tuple[dict[str, str], Path], **overrides: str) -> Daphne:
    env, workdir = cluster_env
    return Daphne(name, {**env, **overrides}, workdir)


@pytest.fixture(scope="module")
def workers(cluster_env) -> Iterator[tuple[Daphne, Daphne]]:
    a, b = start_worker("worker-a", cluster_env), start_worker("worker-b", cluster_env)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def upstream_for_workers(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    fake_openai_server.reset()
    return fake_openai_server


class LiveSocket(Socket):
    """A real WebSocket to a daphne worker, with the test helpers of `Socket`."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))

    async def nothing_received(self) -> bool:
        try:
            await asyncio.wait_for(self.connection.recv(), 0.3)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        await self.connection.close()


def browser_session(worker: Daphne) -> str:
    """The session cookie a browser gets from the chat page."""
    jar = CookieJar()
    urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)).open(worker.url + "/").read()
    return next(cookie.value for cookie in jar if cookie.name == "sessionid")


async def connect(worker: Daphne, session: str, **options: Any) -> LiveSocket:
    connection = await websockets.connect(
        worker.ws_url, origin=worker.url, additional_headers={"Cookie": f"sessionid={session}"}, **options
    )
    socket = LiveSocket(connection)
    assert (await socket.receive())["type"] == "ready"
    return socket


def saved_exchange(worker: Daphne, session: str, conversation: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{worker.url}/api/conversations/{conversation}/", headers={"Cookie": f"sessionid={session}"}
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["exchanges"][-1]


async def test_every_delta_of_a_stream_reaches_the_clients_sockets_on_both_workers(workers, upstream_for_workers):
    a, b = workers
    upstream_for_workers.then(Script(tokens=TOKENS), Script(tokens=TOKENS[:5]))
    session = browser_session(a)
    on_a, on_b = await connect(a, session), await connect(b, session)

    await on_a.send(prompt(request="from-a"))
    seen_on_a, seen_on_b = await on_a.stream_to_end(), await on_b.stream_to_end()
    await on_b.send(prompt(request="from-b"))
    again_on_a, again_on_b = await on_a.stream_to_end(), await on_b.stream_to_end()

    assert seen_on_a == seen_on_b and texts(seen_on_b) == "".join(TOKENS)
    assert again_on_a == again_on_b and texts(again_on_a) == "".join(TOKENS[:5])
    assert saved_exchange(b, session, seen_on_a[0]["conversation"])["answer"] == "".join(TOKENS)
    await on_a.close()
    await on_b.close()


async def test_a_cancel_sent_to_one_worker_stops_the_generation_on_the_other(workers, upstream_for_workers):
    a, b = workers
    upstream_for_workers.then(Script(tokens=TOKENS, hang_after=3))
    session = browser_session(a)
    on_a, on_b = await connect(a, session), await connect(b, session)
    await on_a.send(prompt())
    start = await on_b.receive()
    await on_b.receive_text("".join(TOKENS[:3]))

    await on_b.send({"type": "cancel", "stream": start["stream"]})

    await asyncio.wait_for(upstream_for_workers.requests[0].closed.wait(), timeout=1)
    done = await on_b.receive()
    assert done["type"] == "done" and done["finish_reason"] == "cancelled"
    assert (await on_a.stream_to_end())[-1] == done
    assert saved_exchange(a, session, start["conversation"])["status"] == "cancelled"
    await on_a.close()
    await on_b.close()


async def test_a_socket_that_dropped_resumes_on_the_other_worker_with_no_gap_and_no_duplicate(
    workers, upstream_for_workers
):
    a, b = workers
    upstream_for_workers.then(Script(tokens=TOKENS, interval=0.01))
    session = browser_session(a)
    on_a = await connect(a, session)
    await on_a.send(prompt())
    start = await on_a.receive()
    before = [await on_a.receive() for _ in range(5)]
    await on_a.close()

    on_b = await connect(b, session)
    await on_b.send({"type": "resume", "stream": start["stream"], "after": before[-1]["seq"]})
    after = await on_b.stream_to_end()

    deltas = [f for f in before + after if f["type"] == "delta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1)), (before, after)
    assert texts(deltas) == "".join(TOKENS) == saved_exchange(b, session, start["conversation"])["answer"]
    await on_b.close()


async def test_a_socket_backed_up_past_the_kernels_buffers_holds_no_one_back_and_catches_up_whole(
    workers, upstream_for_workers
):
    a, b = workers
    tokens = [f" t{i:04d}" + "x" * 2000 for i in range(4000)]  # 8 MB
    # The slow socket's receive buffer is tiny and it reads nothing, so the worker's send buffer fills (at most
    # tcp_wmem's largest) and the rest waits in the worker: the socket is truly behind, not just buffered away.
    assert len("".join(tokens)) > 1.5 * largest_send_buffer()
    upstream_for_workers.then(Script(tokens=tokens))
    session = browser_session(a)
    sender = await connect(a, session, max_size=None)
    slow = await connect(b, session, max_size=None, max_queue=1, sock=tiny_receive_buffer(b.port))
    await sender.send(prompt())
    sent = await sender.stream_to_end(timeout=60)  # the slow socket on the other worker does not hold the stream

    caught_up = await slow.stream_to_end(timeout=60)

    deltas = [f for f in caught_up if f["type"] == "delta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert texts(deltas) == "".join(tokens) and caught_up == sent
    await sender.close()
    await slow.close()


def largest_send_buffer() -> int:
    """The most the kernel lets a TCP socket's send buffer grow to (the last of tcp_wmem's three numbers)."""
    return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def tiny_receive_buffer(port: int) -> socket.socket:
    """A connected TCP socket whose receive buffer is set small before connecting (which also keeps the kernel from
    growing it)."""
    connection = socket.socket()
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.connect(("127.0.0.1", port))
    connection.setblocking(False)
    return connection


async def test_the_streams_of_a_killed_worker_end_interrupted_and_the_client_hears_it(
    cluster_env, workers, upstream_for_workers
):
    _, survivor = workers
    doomed = start_worker("worker-doomed", cluster_env)
    upstream_for_workers.then(Script(tokens=TOKENS, hang_after=4))
    session = browser_session(survivor)
    on_doomed, on_survivor = await connect(doomed, session), await connect(survivor, session)
    await on_doomed.send(prompt())
    start = await on_survivor.receive()
    received = await on_survivor.receive_text("".join(TOKENS[:4]))

    doomed.stop(signal.SIGKILL)
    error = await on_survivor.receive(timeout=15)  # STREAMING_WORKER_TIMEOUT is 3 s for these workers

    assert error["type"] == "error" and error["code"] == "interrupted" and error["stream"] == start["stream"]
    saved = saved_exchange(survivor, session, start["conversation"])
    assert saved["status"] == "interrupted" and saved["answer"] == received
    await on_survivor.close()


async def test_sigterm_lets_a_short_stream_finish_and_interrupts_a_long_one(cluster_env, workers, upstream_for_workers):
    _, survivor = workers
    stopping = start_worker("worker-stopping", cluster_env, STREAMING_SHUTDOWN_GRACE="2")
    short_tokens = TOKENS[:20]
    upstream_for_workers.then(Script(tokens=short_tokens, interval=0.1), Script(tokens=TOKENS, hang_after=2))
    session = browser_session(survivor)
    on_stopping, on_survivor = await connect(stopping, session), await connect(survivor, session)
    await on_stopping.send(prompt(request="short"))
    await on_stopping.send(prompt(request="long"))
    starts = {}
    while len(starts) < 2:
        frame = await on_survivor.receive()
        if frame["type"] == "start":
            starts[frame["request"]] = frame
    # Most of the short answer first, 1.4 s of it: within about a second of a socket's connecting, daphne's own
    # shutdown fails before it cancels the application instances, which would hide a drain that comes after them.
    heard_on_stopping = []
    while texts(f for f in heard_on_stopping if f["stream"] == starts["short"]["stream"]).count(" w") < 14:
        heard_on_stopping.append(await on_stopping.receive())

    sigterm = asyncio.create_task(asyncio.to_thread(stopping.stop, signal.SIGTERM, 30))
    streams = {start["stream"] for start in starts.values()}
    while streams - {f["stream"] for f in heard_on_stopping if f["type"] in {"done", "error"}}:
        heard_on_stopping.append(await on_stopping.receive(timeout=15))
    closed_with = await close_code(on_stopping.connection)
    exit_code = await sigterm

    ends = {}
    while len(ends) < 2:
        frame = await on_survivor.receive()
        if frame["type"] in {"done", "error"}:
            ends[frame["stream"]] = frame
    short, long = ends[starts["short"]["stream"]], ends[starts["long"]["stream"]]
    assert short["type"] == "done" and short["finish_reason"] == "stop"
    assert long["type"] == "error" and long["code"] == "interrupted"
    conversation = starts["short"]["conversation"]
    assert saved_exchange(survivor, session, conversation)["answer"] == "".join(short_tokens)
    assert saved_exchange(survivor, session, starts["long"]["conversation"])["status"] == "interrupted"
    assert exit_code == 0, stopping.output()
    assert closed_with == 4012, stopping.output()  # "restarting", after the ends, which it heard first
    await on_survivor.close()


async def test_two_workers_count_one_clients_prompts_against_one_budget(cluster_env, upstream_for_workers):
    # Every socket of these tests comes from 127.0.0.1, and an anonymous client is counted by its address too: the
    # other tests' prompts of the last minute must not count here.
    env, _ = cluster_env
    forget = "from streaming.models import Exchange; Exchange.objects.update(address='')"
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "manage.py", "shell", "-c", forget], env=env, cwd=ROOT, check=True
    )
    a = start_worker("budget-a", cluster_env, STREAMING_PROMPTS_PER_MINUTE="2")
    b = start_worker("budget-b", cluster_env, STREAMING_PROMPTS_PER_MINUTE="2")
    try:
        session = browser_session(a)
        on_a, on_b = await connect(a, session), await connect(b, session)
        await on_a.send(prompt(request="one"))
        await on_a.stream_to_end()
        await on_b.stream_to_end()
        await on_b.send(prompt(request="two"))
        await on_b.stream_to_end()
        await on_a.stream_to_end()

        await on_a.send(prompt(request="three"))
        refused = await on_a.receive()

        assert (refused["type"], refused["code"], refused["request"]) == ("error", "too_many_prompts", "three")
        assert 0 < refused["retry_after_ms"] <= 60_000
        await on_a.close()
        await on_b.close()
    finally:
        a.stop()
        b.stop()
