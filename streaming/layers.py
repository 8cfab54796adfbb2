"""`streaming.layers.LocalChannelLayer`, the dotted path deployments name in `CHANNEL_LAYERS`, kept working: the layer
lives in `streaming.deployment.layers`."""

from streaming.deployment.layers import LocalChannelLayer

__all__ = ["LocalChannelLayer"]
