"""State the processes of one deployment share: each stream's record, which clients have a socket open, which workers
live.

A stream's record holds every frame it sent that a socket may need again (deltas and the end), in order, each with
its place: a socket that missed frames, a resume and the repair of a lost end all read it. On a Redis channel layer
it lives in Redis (the layer's server, or `STREAMING_REDIS_URL`), so any worker can replay a stream another one
generates and notice a worker that died; on an in-memory layer one process serves everything and the same interface
keeps it in memory. Every entry expires, so
nothing here grows without bound and nothing needs cleaning up after a crash.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as redis
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import decode_hosts
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from streaming.conf import app_settings
from streaming.deployment.batching import Command, PipelineBatcher
from streaming.errors import StoreUnavailable


@dataclass(frozen=True, slots=True)
class Entry:
    """One frame of a stream's record: its place in the stream (`pos`, from 1), the delta `seq` it carries (0 for
    frames that are not deltas), whether it ends the stream, and the frame as sent."""

    pos: int
    seq: int
    end: bool
    frame: str

    def encode(self) -> str:
        return f"{self.pos} {self.seq} {int(self.end)} {self.frame}"

    @classmethod
    def decode(cls, raw: bytes | str) -> Entry:
        text = raw.decode() if isinstance(raw, bytes) else raw
        pos, seq, end, frame = text.split(" ", 3)
        return cls(int(pos), int(seq), end == "1", frame)


@dataclass(frozen=True, slots=True)
class Record:
    """The entries of a stream's record after some place, as far as they follow on without a hole; `whole` says
    whether that is all the record holds."""

    entries: list[Entry]
    whole: bool = True

    @classmethod
    def read(cls, entries: list[Entry], after: int) -> Record:
        """Entries `after + 1`, `after + 2`, ... up to the first one missing.

        A record that a Redis restart emptied mid-stream starts again at a later place; reading only what follows on
        without a hole never gives a socket the wrong frame (the stream writes its record again at its next frame).
        """
        run = [entry for entry in entries if entry.pos > after]
        for index, entry in enumerate(run):
            if entry.pos != after + index + 1:
                return cls(run[:index], whole=False)
        return cls(run)


class SharedState(Protocol):
    # Whether other processes see this state: without it, no worker can tell whether another one is alive.
    crosses_processes: bool

    async def keep(self, stream: str, entry: Entry, *, after: int | None = None) -> bool:
        """Add a frame to the stream's record; False when the record had lost earlier frames (Redis restarted):
        the caller then rewrites it whole. `after`: the number of the last upstream event the frame carries, kept
        with it for a worker that takes the stream over (see `relay.handover`)."""

    async def rewrite(
        self, stream: str, entries: list[Entry], *, handover: dict[str, str | bytes] | None = None
    ) -> None:
        """Replace the stream's record with `entries`, all of its frames so far, and its handover with `handover`
        (if given: every field `note_handover` and `keep`'s `after` have kept for its present round)."""

    async def entries_after(self, stream: str, after: int) -> Record:
        """The record's entries after place `after`."""

    async def note_handover(self, stream: str, fields: dict[str, str | bytes]) -> None:
        """Keep these fields of what another worker would need to go on with the stream (`relay.handover`)."""

    async def handover(self, stream: str) -> dict[str, str]:
        """Everything kept for the stream by `note_handover` and `keep`'s `after`."""

    async def mark_present(self, clients: Iterable[str]) -> None:
        """These clients have a socket open here, for the next `presence_ttl` seconds."""

    async def is_present(self, client: str) -> bool: ...

    async def heartbeat(self, worker: str) -> None:
        """This worker is alive, for the next `worker_ttl` seconds."""

    async def live_workers(self, workers: Iterable[str]) -> set[str]: ...

    async def forget_worker(self, worker: str) -> None:
        """This worker is gone (it drained): the others need not wait for its heartbeat to expire."""


class MemoryState:
    """One process's state, for deployments without Redis (where there is only one process)."""

    crosses_processes = False

    def __init__(self, *, replay_ttl: float, presence_ttl: float, worker_ttl: float, stream_ttl: float) -> None:
        self.replay_ttl, self.presence_ttl, self.worker_ttl = replay_ttl, presence_ttl, worker_ttl
        self.stream_ttl = stream_ttl
        self._records: dict[str, tuple[list[Entry], float]] = {}
        self._handovers: dict[str, dict[str, str]] = {}  # kept with their records, and forgotten with them
        self._present: dict[str, float] = {}
        self._workers: dict[str, float] = {}
        self._next_cleaning = 0.0

    async def keep(self, stream: str, entry: Entry, *, after: int | None = None) -> bool:
        now = time.monotonic()
        self._forget_expired(now)
        entries, expires = self._records.get(stream, ([], now + self.stream_ttl + self.replay_ttl))
        entries.append(entry)
        self._records[stream] = (entries, expires)
        if after is not None:
            await self.note_handover(stream, {"after": str(after)})
        return True

    async def note_handover(self, stream: str, fields: dict[str, str | bytes]) -> None:
        decoded = {name: value.decode() if isinstance(value, bytes) else value for name, value in fields.items()}
        self._handovers.setdefault(stream, {}).update(decoded)

    async def handover(self, stream: str) -> dict[str, str]:
        return dict(self._handovers.get(stream, {}))

    async def rewrite(
        self, stream: str, entries: list[Entry], *, handover: dict[str, str | bytes] | None = None
    ) -> None:
        self._records[stream] = (list(entries), time.monotonic() + self.stream_ttl + self.replay_ttl)
        if handover is not None:
            self._handovers.pop(stream, None)
            await self.note_handover(stream, handover)

    async def entries_after(self, stream: str, after: int) -> Record:
        entries, expires = self._records.get(stream, ([], 0.0))
        return Record(entries[after:] if expires > time.monotonic() else [])

    async def mark_present(self, clients: Iterable[str]) -> None:
        now = time.monotonic()
        self._forget_expired(now)
        self._present.update(dict.fromkeys(clients, now + self.presence_ttl))

    async def is_present(self, client: str) -> bool:
        return self._present.get(client, 0.0) > time.monotonic()

    async def heartbeat(self, worker: str) -> None:
        self._workers[worker] = time.monotonic() + self.worker_ttl

    async def forget_worker(self, worker: str) -> None:
        self._workers.pop(worker, None)

    async def live_workers(self, workers: Iterable[str]) -> set[str]:
        now = time.monotonic()
        return {worker for worker in workers if self._workers.get(worker, 0.0) > now}

    def _forget_expired(self, now: float) -> None:
        """Drop what has expired, at most once a second: as Redis would, so that no client or stream stays for good."""
        if now < self._next_cleaning:
            return
        self._next_cleaning = now + 1.0
        for entries in (self._present, self._workers):
            for key in [key for key, expires in entries.items() if expires <= now]:
                del entries[key]
        for stream in [stream for stream, (_, expires) in self._records.items() if expires <= now]:
            del self._records[stream]
            self._handovers.pop(stream, None)


class RedisState:
    """The deployment's state in Redis: a list per stream (its record), and keys with a TTL for presence and
    liveness. Redis's own failures surface as `StoreUnavailable`."""

    crosses_processes = True

    def __init__(
        self, url: str, *, replay_ttl: float, presence_ttl: float, worker_ttl: float, stream_ttl: float
    ) -> None:
        options = app_settings.REDIS_OPTIONS
        self.url = url
        self.redis = redis.Redis.from_url(url, **options)
        # The records' pipelines get a client of their own without a timeout per reply (a timer per reply costs more
        # than the reply); the batcher puts one timeout on each whole pipeline instead.
        self.batcher = PipelineBatcher(
            redis.Redis.from_url(url, **{**options, "socket_timeout": None}), timeout=options.get("socket_timeout")
        )
        self.replay_ttl = int(replay_ttl)
        # In milliseconds: a period under a second (tests, a short presence) must not become a TTL of 0.
        self.presence_ms, self.worker_ms = round(presence_ttl * 1000), round(worker_ttl * 1000)
        self.stream_ttl = int(stream_ttl)
        self._mark_present = self.redis.register_script(_MARK_PRESENT)
        self._is_present = self.redis.register_script(_IS_PRESENT)

    async def keep(self, stream: str, entry: Entry, *, after: int | None = None) -> bool:
        return await self.keep_and_publish(stream, entry, after=after)

    async def keep_and_publish(
        self,
        stream: str,
        entry: Entry,
        *,
        channel: str = "",
        message: bytes = b"",
        before: bytes = b"",
        after: int | None = None,
    ) -> bool:
        """Add a frame to the stream's record, with `after` (see `keep`), and publish `message` on `channel` (if
        given), just after `before` (if given: a frame that is not kept), in that order, in the next pipeline; False
        when the record had lost earlier frames.

        The record's expiry is set with its first frame, to outlast the longest stream by `replay_ttl`: one command
        less for every other frame.
        """
        key = record_key(stream)
        commands: tuple[Command, ...] = (("RPUSH", key, entry.encode()),)
        if entry.pos == 1:
            commands += (("EXPIRE", key, self.stream_ttl + self.replay_ttl),)
        if after is not None:  # the handover's key has its expiry from its round's plan
            commands += (("HSET", handover_key(stream), "after", after),)
        if channel:
            commands += (("PUBLISH", channel, before),) if before else ()
            commands += (("PUBLISH", channel, message),)
        with _store_errors():
            replies = await self.batcher.execute(*commands)
        return replies[0] == entry.pos

    async def rewrite(
        self, stream: str, entries: list[Entry], *, handover: dict[str, str | bytes] | None = None
    ) -> None:
        key, kept = record_key(stream), handover_key(stream)
        commands: tuple[Command, ...] = (("DEL", key),)
        if entries:
            commands += (("RPUSH", key, *(entry.encode() for entry in entries)),)
            commands += (("EXPIRE", key, self.stream_ttl + self.replay_ttl),)
        if handover:  # the restart emptied it too, but for what the frame that found the hole wrote again
            commands += (("DEL", kept), ("HSET", kept, *_flat(handover)))
        if entries or handover:  # a handover begun again by that frame alone expires all the same
            commands += (("EXPIRE", kept, self.stream_ttl + self.replay_ttl),)
        with _store_errors():
            await self.batcher.execute(*commands)

    async def publish(self, channel: str, message: bytes, *, queued: Callable[[], None] | None = None) -> None:
        """Publish `message` on `channel` with the next pipeline, in order with the records' frames; `queued` is
        called once it holds its place in line, before its round trip: a frame kept after that is sent after it."""
        with _store_errors():
            sent = self.batcher.submit(("PUBLISH", channel, message))
            if queued is not None:
                queued()
            await sent

    async def aclose(self) -> None:
        await self.redis.aclose()
        await self.batcher.aclose()

    async def entries_after(self, stream: str, after: int) -> Record:
        with _store_errors():
            entries = [Entry.decode(item) for item in await self.redis.lrange(record_key(stream), after, -1)]
            if entries and entries[0].pos != after + 1:  # started again, so not indexed by place: read it all
                entries = [Entry.decode(item) for item in await self.redis.lrange(record_key(stream), 0, -1)]
        return Record.read(entries, after)

    async def note_handover(self, stream: str, fields: dict[str, str | bytes]) -> None:
        """In the records' pipeline, so in order with the stream's frames."""
        key, ttl = handover_key(stream), self.stream_ttl + self.replay_ttl
        with _store_errors():
            await self.batcher.execute(("HSET", key, *_flat(fields)), ("EXPIRE", key, ttl))

    async def handover(self, stream: str) -> dict[str, str]:
        with _store_errors():
            fields = await self.redis.hgetall(handover_key(stream))
        return {name.decode(): value.decode() for name, value in fields.items()}

    async def mark_present(self, clients: Iterable[str]) -> None:
        """One command however many clients: a worker marks all of its clients a few times a period, on the loop
        its streams share (a SET for each cost the loop 25 ms every heartbeat at a thousand sockets)."""
        clients = list(clients)
        if clients:
            with _store_errors():
                await self._mark_present(keys=[PRESENT_KEY], args=[self.presence_ms, *clients])

    async def is_present(self, client: str) -> bool:
        with _store_errors():
            return bool(await self._is_present(keys=[PRESENT_KEY, f"chat:present:{client}"], args=[client]))

    async def heartbeat(self, worker: str) -> None:
        with _store_errors():
            await self.redis.set(f"chat:worker:{worker}", 1, px=self.worker_ms)

    async def forget_worker(self, worker: str) -> None:
        with _store_errors():
            await self.redis.delete(f"chat:worker:{worker}")

    async def live_workers(self, workers: Iterable[str]) -> set[str]:
        workers = list(workers)
        if not workers:
            return set()
        with _store_errors():
            found = await self.redis.mget([f"chat:worker:{worker}" for worker in workers])
        return {worker for worker, value in zip(workers, found, strict=True) if value is not None}


# Presence is one sorted set: each client scored by when its mark expires, on Redis's clock (so workers' clocks need
# not agree), swept of expired marks by every mark, and expiring as a whole once no worker marks anyone.
PRESENT_KEY = "chat:present"

_MARK_PRESENT = """
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local scored = {}
for i = 2, #ARGV do
    scored[#scored + 1] = now + ttl
    scored[#scored + 1] = ARGV[i]
    if #scored == 1000 or i == #ARGV then  -- unpack's arguments are limited to a few thousand
        redis.call('ZADD', KEYS[1], unpack(scored))
        scored = {}
    end
end
if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
end
"""

# KEYS[2] is the key of its own that a worker of the release before marked a client with: read until no worker of
# that release can still be running (a rolling upgrade), so that their clients do not look gone meanwhile.
_IS_PRESENT = """
if redis.call('EXISTS', KEYS[2]) == 1 then
    return 1
end
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires then
    return 0
end
local time = redis.call('TIME')
return tonumber(expires) > time[1] * 1000 + math.floor(time[2] / 1000) and 1 or 0
"""


def record_key(stream: str) -> str:
    return f"chat:record:{stream}"


def handover_key(stream: str) -> str:
    return f"chat:handover:{stream}"


def _flat(fields: dict[str, str | bytes]) -> list[str | bytes]:
    """A hash's fields as `HSET` takes them: name, value, name, value..."""
    return [part for pair in fields.items() for part in pair]


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """Redis failing or timing out becomes `StoreUnavailable`, never the time limit a `TimeoutError` would suggest."""
    try:
        yield
    except (redis.RedisError, TimeoutError, OSError) as exc:
        raise StoreUnavailable() from exc


@functools.cache
def get_shared() -> SharedState:
    """The process's shared state; one Redis connection pool for all its streams."""
    ttls = {
        "replay_ttl": app_settings.REPLAY_SECONDS,
        "presence_ttl": app_settings.PRESENCE_SECONDS,
        "worker_ttl": app_settings.WORKER_TIMEOUT,
    }
    ttls["stream_ttl"] = app_settings.MAX_SECONDS
    url = state_url()
    return RedisState(url, **ttls) if url else MemoryState(**ttls)


def state_url() -> str | None:
    """The Redis server of the shared state: `STREAMING_REDIS_URL`, or else the one server of the default channel
    layer when it is a Redis layer; None (this process's memory) otherwise. A Redis layer on several servers needs
    `STREAMING_REDIS_URL` (the system check `streaming.E003` says so)."""
    if app_settings.REDIS_URL:
        return app_settings.REDIS_URL
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if not is_redis_layer(layer.get("BACKEND", "")):
        return None
    hosts = decode_hosts(layer.get("CONFIG", {}).get("hosts"))
    return hosts[0].get("address") if len(hosts) == 1 else None


def is_redis_layer(backend: str) -> bool:
    """Whether a `CHANNEL_LAYERS` backend (a dotted path) is one of channels-redis's layers, or a subclass."""
    try:
        layer_class = import_string(backend)
    except ImportError:
        return False
    return isinstance(layer_class, type) and issubclass(layer_class, (RedisChannelLayer, RedisPubSubChannelLayer))


@receiver(setting_changed)
def _forget_shared(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHANNEL_LAYERS" or setting.startswith("STREAMING_"):
        get_shared.cache_clear()
