"""The channel layer of a deployment with Redis: channels-redis's pub/sub layer, which this app publishes through.

A stream's frames are kept in its record and published to its client's group in one Redis pipeline shared by every
stream of the moment (see `publish` and `batching`): one round trip for many frames, where the layer's public
`group_send` costs one awaited `PUBLISH` per frame under a per-connection lock. For that the app must know the Redis
channel a group's messages travel on, and which server carries it. This subclass says both as public methods, so
nothing outside it depends on how channels-redis names things; `tests/test_publish.py` pins the name to the one the
layer itself subscribes to (channels-redis is pinned below 5 in pyproject.toml).

With one host, the one `REDIS_URL` names too (what the settings build), frames take the shared pipeline. With any
other configuration (several hosts, another server) they are kept in the record, then sent with `group_send`.
"""

from __future__ import annotations

from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import decode_hosts


class RedisLayer(RedisPubSubChannelLayer):
    def __init__(self, *args: Any, prefix: str = "asgi", **kwargs: Any) -> None:
        super().__init__(*args, prefix=prefix, **kwargs)
        self.prefix = prefix
        hosts = decode_hosts(kwargs.get("hosts", args[0] if args else None))
        self.address: str | None = hosts[0].get("address") if len(hosts) == 1 else None

    def group_channel(self, group: str) -> str:
        """The Redis channel a group's messages are published on."""
        return f"{self.prefix}__group__{group}"

    def publishes_on(self, url: str) -> bool:
        """Whether this layer's one Redis server is the one at `url`, so that a pipeline there reaches its sockets."""
        return self.address == url
