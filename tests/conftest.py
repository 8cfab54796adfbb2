"""Fixtures shared by the test suite: the fake model provider, sockets as clients, and clean state per test."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore

from chatproject.asgi import application
from streaming.clients import client_of
from streaming.deployment import running
from streaming.deployment.publish import frame_event
from streaming.deployment.worker import worker
from tests.fake_openai import FakeOpenAI
from tests.live import RedisServer, free_port, reachable

ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture(autouse=True)
def _postgresql_only(request: pytest.FixtureRequest) -> None:
    """A test marked `postgresql` needs PostgreSQL. CI runs it there and deselects it in the SQLite run (`-m`), so it
    is never skipped in CI; on a laptop with SQLite it is skipped, and says so."""
    if request.node.get_closest_marker("postgresql") is None:
        return
    from django.conf import settings

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        if os.environ.get("CI"):
            pytest.fail("a PostgreSQL test ran on another database: deselect it with -m 'not postgresql'")
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://… to run it")


@pytest.fixture(scope="session")
async def fake_openai_server() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server for the tests that need one: the machine's, or a throwaway one started for the run."""
    if reachable("127.0.0.1", 6379):
        url = os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/14")
        redis.Redis.from_url(url).flushdb()
        yield url
        return
    if shutil.which("redis-server"):
        port = free_port()
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
        server.terminate()
        server.wait()
        return
    message = "No Redis at 127.0.0.1:6379 and no redis-server binary: the Redis tests were NOT run"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def own_redis(tmp_path: Any) -> Iterator[RedisServer]:
    """A Redis server of the test's own, which it may kill and start again (see `tests.live.RedisServer`)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def upstream(fake_openai_server: FakeOpenAI, settings: Any) -> FakeOpenAI:
    """The fake provider, configured as the app's model provider for this test."""
    fake_openai_server.reset()
    settings.STREAMING_OPENAI_API_KEY = "sk-test-secret-key"
    settings.STREAMING_OPENAI_BASE_URL = fake_openai_server.base_url
    settings.STREAMING_MODEL = "fake-model"
    settings.STREAMING_MODELS = ["fake-model", "fake-model-large"]
    return fake_openai_server


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    names = "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    command = f"openssl req -x509 -newkey rsa:2048 -nodes -days 1 {names} -keyout {key} -out {cert}"
    subprocess.run(command.split(), check=True, capture_output=True)
    return cert, key


@pytest.fixture(autouse=True)
async def fresh_layer() -> AsyncIterator[None]:
    """Every test starts with an empty channel layer and leaves no stream running behind it."""
    channel_layers.backends.clear()
    yield
    try:
        await asyncio.wait_for(running.streams_finished(), timeout=10)
    except TimeoutError:
        for task in running.tasks():
            task.print_stack()
        raise
    finally:
        await worker.stop_duties()


class Socket:
    """A chat socket as a test drives it: JSON frames in and out."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_json_to(frame)

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        return await self.communicator.receive_json_from(timeout=timeout)

    async def receive_until(self, kind: str, timeout: float = 5) -> list[dict[str, Any]]:
        """Frames up to and including the first of type `kind`."""
        frames = []
        while not frames or frames[-1]["type"] != kind:
            frames.append(await self.receive(timeout))
        return frames

    async def stream_to_end(self, timeout: float = 5) -> list[dict[str, Any]]:
        """Frames up to and including the `done` or `error` that ends a stream."""
        frames = []
        while not frames or frames[-1]["type"] not in {"done", "error"} or "stream" not in frames[-1]:
            frames.append(await self.receive(timeout))
        return frames

    async def receive_text(self, expected: str) -> str:
        """Deltas until their texts make `expected`: how many frames that takes depends on coalescing."""
        received = ""
        while received != expected:
            received += (await self.receive())["text"]
        return received

    async def nothing_received(self) -> bool:
        return await self.communicator.receive_nothing(timeout=0.2)

    async def close(self) -> None:
        await self.communicator.disconnect()


def new_session() -> str:
    session = SessionStore()
    session["chat"] = True
    session.save()
    return session.session_key


async def open_socket(
    *, session_key: str | None = None, origin: tuple[bytes, bytes] = ORIGIN, ready: bool = True
) -> Socket:
    headers = [origin]
    if session_key:
        headers.append((b"cookie", f"sessionid={session_key}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    socket = Socket(communicator)
    if ready:
        assert (await socket.receive())["type"] == "ready"
    return socket


def prompt(content: str = "Say hello", request: str = "r1", **fields: Any) -> dict[str, Any]:
    return {"type": "prompt", "request": request, "content": content, **fields}


def texts(frames: Iterable[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "delta")


def dumps(frame: Any) -> str:
    return json.dumps(frame)


def layer_event(frame: dict[str, Any], *, pos: int | None = None) -> dict[str, Any]:
    """The channel-layer message a worker sends for `frame`; a delta's place in its record is its `seq`, as when a
    stream keeps only deltas before its end."""
    seq = frame.get("seq") if frame["type"] == "delta" else None
    return frame_event(frame["type"], frame["stream"], dumps(frame), pos=pos or seq, seq=seq)


def group_of_session(session_key: str) -> str:
    """The channel-layer group of the client a browser with this session is."""
    return client_of({"session": SimpleNamespace(session_key=session_key)}).group
