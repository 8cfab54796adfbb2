"""State the processes of one deployment share: replay buffers, which clients have a socket open, which workers live.

With `REDIS_URL` it lives in Redis, so any worker can replay a stream another one generates and notice a worker that
died; without it, one process serves everything and the same interface keeps it in memory. Every entry expires, so
nothing here grows without bound and nothing needs cleaning up after a crash.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Any, Protocol

import redis.asyncio as redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from streaming.batching import Command, PipelineBatcher


class SharedState(Protocol):
    # Whether other processes see this state: without it, no worker can tell whether another one is alive.
    crosses_processes: bool

    async def append_delta(self, stream: str, seq: int, text: str) -> None:
        """Keep a delta for replay; `seq` is always one more than the last one kept for `stream`."""

    async def deltas_after(self, stream: str, after: int) -> list[str]:
        """Texts of the deltas numbered `after + 1` onwards, as far as they are kept."""

    async def delta_count(self, stream: str) -> int:
        """How many deltas of `stream` are kept: the last seq, while the stream runs."""

    async def mark_present(self, clients: Iterable[str]) -> None:
        """These clients have a socket open here, for the next `presence_ttl` seconds."""

    async def is_present(self, client: str) -> bool: ...

    async def heartbeat(self, worker: str) -> None:
        """This worker is alive, for the next `worker_ttl` seconds."""

    async def live_workers(self, workers: Iterable[str]) -> set[str]: ...


class MemoryState:
    """One process's state, for deployments without Redis (where there is only one process)."""

    crosses_processes = False

    def __init__(self, *, replay_ttl: float, presence_ttl: float, worker_ttl: float) -> None:
        self.replay_ttl, self.presence_ttl, self.worker_ttl = replay_ttl, presence_ttl, worker_ttl
        self._deltas: dict[str, tuple[list[str], float]] = {}
        self._present: dict[str, float] = {}
        self._workers: dict[str, float] = {}

    async def append_delta(self, stream: str, seq: int, text: str) -> None:
        now = time.monotonic()
        if seq == 1:
            self._forget_expired(now)
        texts, _ = self._deltas.get(stream, ([], 0.0))
        texts.append(text)
        self._deltas[stream] = (texts, now + self.replay_ttl)

    async def deltas_after(self, stream: str, after: int) -> list[str]:
        texts, expires = self._deltas.get(stream, ([], 0.0))
        return texts[after:] if expires > time.monotonic() else []

    async def delta_count(self, stream: str) -> int:
        return len(await self.deltas_after(stream, 0))

    async def mark_present(self, clients: Iterable[str]) -> None:
        until = time.monotonic() + self.presence_ttl
        self._present.update(dict.fromkeys(clients, until))

    async def is_present(self, client: str) -> bool:
        return self._present.get(client, 0.0) > time.monotonic()

    async def heartbeat(self, worker: str) -> None:
        self._workers[worker] = time.monotonic() + self.worker_ttl

    async def live_workers(self, workers: Iterable[str]) -> set[str]:
        now = time.monotonic()
        return {worker for worker in workers if self._workers.get(worker, 0.0) > now}

    def _forget_expired(self, now: float) -> None:
        for stream in [s for s, (_, expires) in self._deltas.items() if expires <= now]:
            del self._deltas[stream]


class RedisState:
    """The deployment's state in Redis: a list per stream, and keys with a TTL for presence and liveness."""

    crosses_processes = True

    def __init__(
        self, url: str, *, replay_ttl: float, presence_ttl: float, worker_ttl: float, stream_ttl: float
    ) -> None:
        options = settings.REDIS_CONNECTION_OPTIONS
        self.redis = redis.Redis.from_url(url, **options)
        # The deltas' pipelines get a client of their own without a timeout per reply (a timer per reply costs more
        # than the reply); the batcher puts one timeout on each whole pipeline instead.
        self.batcher = PipelineBatcher(
            redis.Redis.from_url(url, **{**options, "socket_timeout": None}), timeout=options.get("socket_timeout")
        )
        self.replay_ttl, self.presence_ttl, self.worker_ttl = int(replay_ttl), int(presence_ttl), int(worker_ttl)
        self.stream_ttl = int(stream_ttl)

    async def append_delta(self, stream: str, seq: int, text: str) -> None:
        key = f"chat:replay:{stream}"
        async with self.redis.pipeline(transaction=False) as pipe:
            await pipe.rpush(key, text).expire(key, self.replay_ttl).execute()

    async def append_and_publish(self, stream: str, seq: int, text: str, *, channel: str, message: bytes) -> None:
        """Keep a delta for replay and publish `message` on `channel`, in that order, in the next pipeline.

        The buffer's expiry is set once, with the first delta, to outlast the longest stream by `replay_ttl`: one
        command less for every other delta.
        """
        key = f"chat:replay:{stream}"
        keep: tuple[Command, ...] = (("RPUSH", key, text),)
        if seq == 1:
            keep += (("EXPIRE", key, self.stream_ttl + self.replay_ttl),)
        await self.batcher.execute(*keep, ("PUBLISH", channel, message))

    async def publish(self, channel: str, message: bytes) -> None:
        """Publish `message` on `channel` with the next pipeline, in order with the deltas."""
        await self.batcher.execute(("PUBLISH", channel, message))

    async def aclose(self) -> None:
        await self.redis.aclose()
        await self.batcher.aclose()

    async def deltas_after(self, stream: str, after: int) -> list[str]:
        texts = await self.redis.lrange(f"chat:replay:{stream}", after, -1)
        return [text.decode() for text in texts]

    async def delta_count(self, stream: str) -> int:
        return await self.redis.llen(f"chat:replay:{stream}")

    async def mark_present(self, clients: Iterable[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for client in clients:
                pipe.set(f"chat:present:{client}", 1, ex=self.presence_ttl)
            await pipe.execute()

    async def is_present(self, client: str) -> bool:
        return bool(await self.redis.exists(f"chat:present:{client}"))

    async def heartbeat(self, worker: str) -> None:
        await self.redis.set(f"chat:worker:{worker}", 1, ex=self.worker_ttl)

    async def live_workers(self, workers: Iterable[str]) -> set[str]:
        workers = list(workers)
        if not workers:
            return set()
        found = await self.redis.mget([f"chat:worker:{worker}" for worker in workers])
        return {worker for worker, value in zip(workers, found, strict=True) if value is not None}


@functools.cache
def get_shared() -> SharedState:
    """The process's shared state; one Redis connection pool for all its streams."""
    ttls = {
        "replay_ttl": settings.STREAMING_REPLAY_SECONDS,
        "presence_ttl": settings.STREAMING_PRESENCE_SECONDS,
        "worker_ttl": settings.STREAMING_WORKER_TIMEOUT,
    }
    if settings.REDIS_URL:
        return RedisState(settings.REDIS_URL, **ttls, stream_ttl=settings.STREAMING_MAX_SECONDS)
    return MemoryState(**ttls)


@receiver(setting_changed)
def _forget_shared(*, setting: str, **kwargs: Any) -> None:
    if setting == "REDIS_URL" or setting.startswith("STREAMING_"):
        get_shared.cache_clear()
