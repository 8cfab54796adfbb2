"""The processes a benchmark needs, started the way a deployment starts them: the bench upstream, a migrated
database, Redis database 13, and one or two daphne workers configured from the environment only.

The daphne processes are started with the test suite's helpers (tests/live.py), so the benchmark and the live tests
run the app the same way. The settings are production's (docker-compose.yml) where the benchmark has no reason to
differ: debug off, `DATABASE_CONN_MAX_AGE=60`, the Redis pub/sub layer when `REDIS_URL` is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.live import ROOT, Daphne, Process, free_port, migrate, reachable, server_env

REDIS_URL = "redis://127.0.0.1:6379/13"
POSTGRES_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


@dataclass
class Database:
    url: str
    kind: str

    def backend_pids(self) -> list[int]:
        """The PostgreSQL processes serving this database (their CPU is the benchmark's, not background load)."""
        if self.kind != "postgres":
            return []  # SQLite runs inside the workers
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.name]).fetchall()
        return [pid for (pid,) in rows]

    @property
    def name(self) -> str:
        return self.url.rpartition("/")[2]

    def drop(self) -> None:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def make_database(kind: str, workdir: Path, index: int = 0) -> Database:
    """An empty database: PostgreSQL when asked or, for "auto", when one answers on 127.0.0.1:5432 (two workers
    writing to one SQLite file wait on its lock); SQLite otherwise."""
    if kind == "auto":
        kind = "postgres" if reachable("127.0.0.1", 5432) else "sqlite"
    if kind == "sqlite":
        return Database(f"sqlite:///{workdir / f'bench{index}.sqlite3'}", "sqlite")
    import psycopg

    name = f"chat_bench_{os.getpid()}_{index}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return Database(f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{name}", "postgres")


def app_env(
    *, database: Database, upstream_url: str, layer: str, api: str = "chat", takeover: bool = False
) -> dict[str, str]:
    """The environment of a daphne worker: production settings, the bench upstream as the model provider."""
    env = server_env(
        DJANGO_SECRET_KEY="bench-secret-key-bench-secret-key-bench-secret-key",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_COOKIES="0",
        STREAMING_REQUIRE_LOGIN="0",
        DATABASE_URL=database.url,
        DATABASE_CONN_MAX_AGE="60",
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=upstream_url,
        OPENAI_MODEL="bench-model",
        OPENAI_MAX_RETRIES="0",
        OPENAI_API=api,
        STREAMING_MAX_STREAMS="100000",
        STREAMING_MAX_SECONDS="600",
        STREAMING_SHUTDOWN_GRACE="2",  # a run that timed out leaves streams behind: stop them quickly
        # Everything that runs before a prompt goes upstream is on, as a host would have it (bench/hooks.py): the
        # history budget (on by default), the hooks, budgets, and tools offered to the bench model.
        STREAMING_CLIENT="bench.hooks.client",
        STREAMING_OFFERED_TOOLS="bench.hooks.offered_tools",
        STREAMING_BUDGET="bench.hooks.budget",
        STREAMING_SYSTEM_INSTRUCTION="bench.hooks.system_instruction",
        STREAMING_TOOL_MODELS="bench-model",
    )
    if layer == "redis":
        env["REDIS_URL"] = REDIS_URL
    if takeover:  # the handover kept with every frame; the bench upstream takes `background` and ignores it
        env["STREAMING_TAKEOVER"] = "1"
    return env


class Upstream(Process):
    """The bench upstream (bench/upstream.py) in a process of its own."""

    def __init__(self, logdir: Path, *, uvloop: bool = True) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "bench.upstream", "--port", str(self.port)]
        super().__init__("upstream", args + ([] if uvloop else ["--no-uvloop"]), dict(os.environ), logdir)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the bench upstream did not start:\n{self.output()}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as response:
            return json.load(response)


class Workers:
    """Daphne workers, each on its own port with its own environment (Redis workers share a database; in-memory
    workers are deployments of their own, each with its own database)."""

    def __init__(self, envs: list[dict[str, str]], logdir: Path, label: str) -> None:
        self.daphnes: list[Daphne] = []
        try:
            for n, env in enumerate(envs):
                self.daphnes.append(Daphne(f"{label}-worker{n + 1}", env, logdir))
        except Exception:
            self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        return [d.popen.pid for d in self.daphnes]

    @property
    def ws_urls(self) -> list[str]:
        return [d.ws_url for d in self.daphnes]

    def stop(self) -> None:
        for daphne in self.daphnes:
            daphne.stop()


def flush_redis() -> int | None:
    """Empty database 13 and return the Redis server's pid (to count its CPU), or None without Redis."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        pid = int(client.info("server")["process_id"])
        client.close()
    except redis.RedisError:
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def prepare(database: Database) -> None:
    """Create the app's tables."""
    migrate(app_env(database=database, upstream_url="http://127.0.0.1:9/v1", layer="memory"))


def empty(database: Database) -> None:
    """Delete every row, so that a configuration starts as a fresh deployment: no stream of an earlier run is
    left logged as running, for a worker's sweep to find and log as interrupted."""
    env = app_env(database=database, upstream_url="http://127.0.0.1:9/v1", layer="memory")
    subprocess.run([sys.executable, "manage.py", "flush", "--no-input", "-v0"], env=env, cwd=ROOT, check=True)


__all__ = ["ROOT", "Database", "Upstream", "Workers", "app_env", "empty", "flush_redis", "make_database", "prepare"]
