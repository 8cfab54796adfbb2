"""Presence in Redis: which clients have a socket open somewhere, so that a stream nobody watches can be stopped.

Every worker marks all of its clients present a few times a period, so the cost of a mark grows with the sockets a
worker holds, and it is paid on the event loop every stream and socket of that worker shares.
"""

from __future__ import annotations

import pytest
import redis

from streaming.deployment.shared import RedisState
from streaming.errors import StoreUnavailable

pytestmark = pytest.mark.redis


def commands_run(server: redis.Redis) -> dict[str, int]:
    """Redis's own count of the commands it has run since its statistics were reset, by name (the commands of a script
    as well as the script's), but for the ones this test sends."""
    stats = server.info("commandstats")
    run = {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}
    return {name: calls for name, calls in run.items() if name not in ("config|resetstat", "info")}


async def test_marking_a_thousand_clients_present_is_one_command_and_a_few_in_redis(own_redis):
    # Each client was one SET in a pipeline: a thousand commands for redis-py to encode and parse on the loop, every
    # heartbeat (about 25 ms of the loop's time at a thousand sockets, 50 ms at two thousand), and for Redis to run.
    state = RedisState(own_redis.url, replay_ttl=60, presence_ttl=15, worker_ttl=15, stream_ttl=60)
    clients = [f"session:{n}" for n in range(1000)]
    try:
        await state.mark_present(clients[:1])  # the first call loads the script into Redis
        with redis.Redis.from_url(own_redis.url) as server:
            server.config_resetstat()

            await state.mark_present(clients)

            run = commands_run(server)
        assert run.get("evalsha") == 1 and sum(run.values()) < 10, run
        assert all([await state.is_present(client) for client in (clients[0], clients[-1])])
        assert not await state.is_present("session:elsewhere")
    finally:
        await state.aclose()


async def redis_now_ms(state: RedisState) -> int:
    seconds, microseconds = await state.redis.time()
    return seconds * 1000 + microseconds // 1000


async def test_a_mark_lasts_its_ttl_on_redis_clock_and_an_expired_one_counts_for_nothing(redis_url):
    state = RedisState(redis_url, replay_ttl=60, presence_ttl=15, worker_ttl=15, stream_ttl=60)
    try:
        before = await redis_now_ms(state)
        await state.mark_present(["session:here"])
        expires = await state.redis.zscore("chat:present", "session:here")
        assert before + 15_000 <= expires <= await redis_now_ms(state) + 15_000

        # A mark that has expired, as Redis's clock tells (no worker's clock is asked): no longer present...
        await state.redis.zadd("chat:present", {"session:leaving": await redis_now_ms(state) - 1})
        assert not await state.is_present("session:leaving")
        # ...and swept away by the next mark of anyone.
        await state.mark_present(["session:here"])
        assert await state.redis.zscore("chat:present", "session:leaving") is None
        assert 0 < await state.redis.pttl("chat:present") <= 15_000  # the set itself goes once nobody marks
    finally:
        await state.aclose()


async def test_a_client_marked_present_by_a_worker_of_the_release_before_is_present(redis_url):
    # Those workers set one key per client; during a rolling upgrade their clients must not look gone to streams
    # running on upgraded workers.
    state = RedisState(redis_url, replay_ttl=60, presence_ttl=15, worker_ttl=15, stream_ttl=60)
    try:
        await state.redis.set("chat:present:session:older", 1, px=15000)
        assert await state.is_present("session:older")
    finally:
        await state.aclose()


async def test_presence_is_marked_again_after_a_redis_restart_emptied_its_scripts(own_redis):
    state = RedisState(own_redis.url, replay_ttl=60, presence_ttl=15, worker_ttl=15, stream_ttl=60)
    try:
        await state.mark_present(["session:before"])
        own_redis.kill()
        own_redis.start()  # the set and the loaded scripts are gone

        try:
            await state.mark_present(["session:after"])
        except StoreUnavailable:  # the pooled connection was closed by the restart: the next command reconnects
            await state.mark_present(["session:after"])
        assert await state.is_present("session:after")
        assert not await state.is_present("session:before")
    finally:
        await state.aclose()
