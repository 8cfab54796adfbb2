"""Real server processes for the tests that need them: daphne workers, each on its own port, and the fake provider.

Each process gets the environment a deployment would give it; its database is a SQLite file of the test run's own,
or, when `DATABASE_URL` names a PostgreSQL server, a database of the test run's own on that server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis
import websockets

from tests.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 30


def reachable(host: str, port: int) -> bool:
    """Whether something accepts TCP connections there (a Redis or PostgreSQL server, say)."""
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def live_database_url(workdir: Path, name: str = "live") -> str:
    """A database for server processes, empty and migrated by `migrate`; test modules whose servers may live at the
    same time give theirs different names."""
    configured = os.environ.get("DATABASE_URL", "")
    if not configured.startswith("postgres"):
        return f"sqlite:///{workdir / f'{name}.sqlite3'}"
    import psycopg

    base, _, _name = configured.rpartition("/")
    live_name = f"chat_{name}_{os.getpid()}"
    with psycopg.connect(configured, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{live_name}"')
        admin.execute(f'CREATE DATABASE "{live_name}"')
    return f"{base}/{live_name}"


def drop_live_database(url: str) -> None:
    if url.startswith("postgres"):
        import psycopg

        _base, _, name = url.rpartition("/")
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Process:
    """A child process whose output goes to a log file, stopped with the signal a test chooses."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logdir: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self.log = self.log_path.open("w")
        self.popen = subprocess.Popen(args, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()
        return self.popen.returncode

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()


def server_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "DJANGO_", "REDIS"))}
    env.update(DJANGO_SETTINGS_MODULE="chatproject.settings", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], env=env, cwd=ROOT, check=True)


def production_env(workdir: Path, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a production worker (debug off, no login required, plain-HTTP cookies), its database
    migrated and its static files collected into `workdir`."""
    env = server_env(
        DJANGO_SECRET_KEY="live-test-secret-key-live-test-secret-key",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_COOKIES="0",
        DJANGO_STATIC_ROOT=str(workdir / "static"),
        STREAMING_REQUIRE_LOGIN="0",
        DATABASE_URL=database_url,
        **overrides,
    )
    migrate(env)
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], env=env, cwd=ROOT, check=True)
    return env


def workers_env(workdir: Path, database_url: str, *, redis_url: str, upstream: str, **overrides: str) -> dict[str, str]:
    """The environment of workers that share one Redis and one database, with the fake provider of the test process
    (at `upstream`) as their model; `busy` frames are off, so that a busy machine adds none to the frames tests
    count."""
    return production_env(
        workdir,
        database_url,
        STREAMING_BUSY_MS="60000",
        REDIS_URL=redis_url,
        OPENAI_API_KEY="sk-live-test",
        OPENAI_BASE_URL=upstream,
        OPENAI_MODEL="fake-model",
        OPENAI_MAX_RETRIES="0",
        **overrides,
    )


class Daphne(Process):
    def __init__(self, name: str, env: dict[str, str], logdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        args = [sys.executable, "-m", "chatproject.server", "-b", "127.0.0.1", "-p", str(self.port)]
        args.append("chatproject.asgi:application")
        super().__init__(name, args, env, logdir)
        wait_for_http(f"{self.url}/healthz", self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"


async def close_code(connection: websockets.ClientConnection, timeout: float = 15) -> int | None:
    """Read until the server closes the WebSocket; the code of its close frame, or None when the connection ended
    without one (dropped). A frame that comes first fails the test."""
    try:
        frame = await asyncio.wait_for(connection.recv(), timeout)
    except websockets.ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code
    raise AssertionError(f"a frame came where the close was expected: {frame}")


def wait_for_http(url: str, process: Process) -> None:
    """Poll until the process answers; it has no other way to say it is listening."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.output()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer {url} within {STARTUP_SECONDS}s:\n{process.output()}")


class RedisServer:
    """A `redis-server` of the test's own, on a port of its own, that a test can kill and start again (the
    machine's Redis is shared, so no test stops it). It keeps nothing on disk: a restart loses everything, as a
    Redis without persistence does."""

    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        self.logdir = logdir
        self.process: Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.starts += 1
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = Process(f"redis-{self.port}-{self.starts}", args, dict(os.environ), self.logdir)
        deadline = time.monotonic() + STARTUP_SECONDS
        while not reachable("127.0.0.1", self.port):
            if self.process.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.process.output()}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGKILL)
            self.process = None

    def subscribers(self, channel: str) -> int:
        """How many connections are subscribed to a pub/sub channel (one per worker for a client's group)."""
        with redis.Redis.from_url(self.url) as client:
            return dict(client.pubsub_numsub(channel)).get(channel.encode(), 0)


class FakeOpenAIThread:
    """The fake provider (`tests.fake_openai`) on an event loop of its own thread, for the browser tests: Playwright's
    sync API owns the main thread, and a daphne the test starts talks to this server over HTTP."""

    def __init__(self) -> None:
        self.fake = FakeOpenAI()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-openai", daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)

    def reset(self, default: Any = None) -> None:
        """Forget the requests and queued scripts; `default` (a `Script`) answers what nothing queued answers."""

        def reset() -> None:
            self.fake.reset()
            if default is not None:
                self.fake.default = default

        self.loop.call_soon_threadsafe(reset)

    def then(self, *scripts: Any) -> None:
        """Queue `Script`s for the next requests, in order."""
        self.loop.call_soon_threadsafe(self.fake.then, *scripts)

    def asked(self) -> list[list[dict[str, Any]]]:
        """The messages of each request the model got, in order."""
        return [list(request.messages) for request in list(self.fake.requests)]

    def wait_closed(self, request: int = -1, timeout: float = 10) -> None:
        """Until the response to a request (the last one by default) has been closed: the relay let go of it."""
        closed = self.fake.requests[request].closed
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(closed.wait(), timeout), self.loop).result(timeout + 1)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
