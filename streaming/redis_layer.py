"""`streaming.redis_layer.RedisLayer`, the dotted path deployments name in `CHANNEL_LAYERS`, kept working: the layer
lives in `streaming.deployment.redis_layer`."""

from streaming.deployment.redis_layer import RedisLayer

__all__ = ["RedisLayer"]
