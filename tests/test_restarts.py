"""Restarts mid-stream, with real processes: a worker told to stop (SIGTERM, as a deploy does), and a Redis that dies
and comes back empty.

A worker that stops keeps what it relayed: each stream still running once the grace period is over ends
`interrupted`, its row holding exactly the text its sockets were sent, and each socket then gets a close with code
4012, so that its client reconnects elsewhere at once. A Redis that dies takes the channel layer and every stream's
record with it: the streams running then end `failed` (`internal_error`, which the client may retry), and every
socket of the client still hears that end, from the log if need be, and streams again once Redis is back.
"""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.conftest import group_of_session, prompt, texts
from tests.fake_openai import FakeOpenAI, Script
from tests.live import (
    Daphne,
    close_code,
    drop_live_database,
    live_database_url,
    production_env,
)
from tests.test_workers import browser_session, connect, saved_exchange

CLOSE_RESTARTING = 4012
LONG = [f" w{i}" for i in range(80)]  # 8 s at 0.1 s a token: longer than any grace period here


def deployment_env(workdir: Path, database_url: str, fake: FakeOpenAI, **overrides: str) -> dict[str, str]:
    """The environment of a production worker answering with the fake provider, its database migrated."""
    return production_env(
        workdir,
        database_url,
        STREAMING_BUSY_MS="60000",  # a busy machine must not add `busy` frames to the frames these tests count
        OPENAI_API_KEY="sk-live-test",
        OPENAI_BASE_URL=fake.base_url,
        OPENAI_MODEL="fake-model",
        OPENAI_MAX_RETRIES="0",
        **overrides,
    )


@pytest.fixture(scope="module")
def lone_env(tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI) -> tuple[dict[str, str], Path]:
    """One worker and nothing else: no Redis (the in-memory layer), a SQLite file."""
    workdir = tmp_path_factory.mktemp("lone")
    return deployment_env(workdir, f"sqlite:///{workdir / 'lone.sqlite3'}", fake_openai_server), workdir


@pytest.fixture(scope="module")
def redis_env(tmp_path_factory: pytest.TempPathFactory, fake_openai_server: FakeOpenAI) -> Iterator:
    """Workers that share a database and, once a test gives them its own Redis, a channel layer; a socket looks a
    silent stream up again after 1 s, and a worker is dead after 3 s without a heartbeat."""
    workdir = tmp_path_factory.mktemp("redis-restarts")
    database_url = live_database_url(workdir, name="restarts")
    env = deployment_env(
        workdir,
        database_url,
        fake_openai_server,
        STREAMING_RECHECK_SECONDS="1",
        STREAMING_WORKER_TIMEOUT="3",
    )
    yield env, workdir
    drop_live_database(database_url)


@pytest.fixture
def launch() -> Iterator[Callable[..., Daphne]]:
    """Start a daphne worker; whatever becomes of the test, every one it started is stopped after it."""
    started: list[Daphne] = []

    def start(name: str, env: dict[str, str], workdir: Path) -> Daphne:
        started.append(Daphne(name, env, workdir))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def upstream_for_servers(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    fake_openai_server.reset()
    return fake_openai_server


async def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll `check` (run in a thread) until it returns something true: for a state that no event announces."""
    deadline = time.monotonic() + timeout
    while not (result := await asyncio.to_thread(check)):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)
    return result


def draining(worker: Daphne) -> bool:
    """Whether the worker has begun draining: its health check then answers 503."""
    try:
        with urllib.request.urlopen(f"{worker.url}/healthz", timeout=5):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 503


async def test_sigterm_to_the_only_worker_saves_the_answer_relayed_and_closes_sockets_with_4012(
    lone_env, launch, upstream_for_servers
):
    env, workdir = lone_env
    upstream_for_servers.then(Script(tokens=LONG, interval=0.1))
    worker = launch("lone", {**env, "STREAMING_SHUTDOWN_GRACE": "1"}, workdir)
    session = browser_session(worker)
    socket = await connect(worker, session)
    await socket.send(prompt())
    start = await socket.receive()
    # Two seconds of deltas first, as on a worker that has been up a while. Within about a second of a socket's
    # connecting, daphne's own shutdown fails (a KeyError) before it cancels the application instances, and a drain
    # that came after it would seem to work.
    frames = [await socket.receive() for _ in range(20)]

    stopping = asyncio.create_task(asyncio.to_thread(worker.stop, signal.SIGTERM, 30))
    frames += await socket.stream_to_end(timeout=15)
    closed_with = await close_code(socket.connection)
    exit_code = await stopping

    error = frames[-1]
    assert error["type"] == "error" and error["code"] == "interrupted" and error["stream"] == start["stream"], frames
    assert closed_with == CLOSE_RESTARTING, worker.output()
    assert exit_code == 0, worker.output()
    relayed = texts(frames)
    assert relayed and relayed != "".join(LONG), frames  # cut short, after some deltas
    saved = saved_exchange(launch("lone-restarted", env, workdir), session, start["conversation"])
    assert saved["status"] == "interrupted" and saved["error"]["code"] == "interrupted", saved
    assert saved["answer"] == relayed, (saved, worker.output())


async def test_a_socket_that_connects_to_a_draining_worker_is_closed_with_4012(lone_env, launch, upstream_for_servers):
    env, workdir = lone_env
    upstream_for_servers.then(Script(tokens=LONG, interval=0.1))
    worker = launch("lone-draining", {**env, "STREAMING_SHUTDOWN_GRACE": "3"}, workdir)
    session = browser_session(worker)
    streaming = await connect(worker, session)
    await streaming.send(prompt())
    await streaming.receive_until("delta")

    worker.popen.send_signal(signal.SIGTERM)
    exiting = asyncio.create_task(asyncio.to_thread(worker.popen.wait, 30))
    await eventually(lambda: draining(worker), "the worker drains")
    late = await websockets.connect(
        worker.ws_url, origin=worker.url, additional_headers={"Cookie": f"sessionid={session}"}
    )

    assert await close_code(late) == CLOSE_RESTARTING, worker.output()
    assert (await streaming.stream_to_end(timeout=15))[-1]["code"] == "interrupted"
    assert await close_code(streaming.connection) == CLOSE_RESTARTING
    assert await exiting == 0, worker.output()


@pytest.mark.redis
@pytest.mark.parametrize("worker_count", [2, 1], ids=["two-workers", "one-worker"])
async def test_a_redis_restart_mid_stream_ends_the_stream_for_every_socket(
    redis_env, own_redis, launch, upstream_for_servers, worker_count
):
    env, workdir = redis_env
    workers = [
        launch(f"redis-{worker_count}-{i}", {**env, "REDIS_URL": own_redis.url}, workdir) for i in range(worker_count)
    ]
    session = browser_session(workers[0])
    sockets = [await connect(worker, session) for worker in workers]
    upstream_for_servers.then(Script(tokens=[f" r{i}" for i in range(200)], interval=0.05))
    await sockets[0].send(prompt(request="before"))
    seen = [await socket.receive_until("delta", timeout=10) for socket in sockets]
    start = seen[0][0]

    def ended() -> dict[str, Any] | None:
        exchange = saved_exchange(workers[-1], session, start["conversation"])
        return None if exchange["status"] == "streaming" else exchange

    own_redis.kill()
    saved = await eventually(ended, "the stream ends once Redis is gone")
    own_redis.start()

    assert saved["status"] == "failed" and saved["error"]["code"] == "internal_error", saved
    for socket, frames in zip(sockets, seen, strict=True):
        frames += await socket.stream_to_end(timeout=30)
        end = frames[-1]
        assert (end["type"], end["code"], end["stream"]) == ("error", "internal_error", start["stream"]), frames
        assert texts(frames) == saved["answer"], frames

    # A worker hears its clients' groups again once channels_redis has subscribed again, a second or so after Redis
    # is back; a frame published before that does not reach its sockets.
    group_channel = f"asgi__group__{group_of_session(session)}"
    await eventually(lambda: own_redis.subscribers(group_channel) == worker_count, "the workers subscribe again")
    upstream_for_servers.then(Script(tokens=LONG[:5]))
    await sockets[-1].send(prompt(request="after"))
    for socket in sockets:
        again = await socket.stream_to_end(timeout=30)
        assert again[0]["type"] == "start" and again[0]["request"] == "after", again
        assert again[-1]["type"] == "done" and texts(again) == "".join(LONG[:5]), again
    for socket in sockets:
        await socket.close()
