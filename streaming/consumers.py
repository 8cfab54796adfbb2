"""The chat socket: frames in, service calls, frames out. No logic lives here that a test could not reach without
a socket; see `protocol` (parsing and building frames) and `streams` (starting and cancelling)."""

from __future__ import annotations

import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from streaming import protocol, streams
from streaming.clients import Client, client_of
from streaming.errors import BadRequest, NotAllowed, StreamingError
from streaming.upstream import demo_enabled

logger = logging.getLogger(__name__)

CLOSE_LOGIN_REQUIRED = 4401


class ChatConsumer(AsyncWebsocketConsumer):
    client: Client

    async def connect(self) -> None:
        self.client = client_of(self.scope)
        await self.accept()
        if settings.STREAMING_REQUIRE_LOGIN and not self.client.user_id:
            await self._send_error(NotAllowed("Log in to chat."))
            await self.close(code=CLOSE_LOGIN_REQUIRED)
            return
        self.limits = streams.current_limits()
        await self.channel_layer.group_add(self.client.group, self.channel_name)
        await self._send_frame(protocol.ready_frame(limits=self.limits, demo=demo_enabled()))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "limits"):
            await self.channel_layer.group_discard(self.client.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self._send_error(BadRequest("Send JSON in text frames; binary frames are not accepted."))
            return
        try:
            frame = protocol.parse_client_frame(text_data, self.limits)
            if isinstance(frame, protocol.Prompt):
                await streams.stream_start(client=self.client, prompt=frame, layer=self.channel_layer)
            else:
                await streams.stream_cancel(client=self.client, stream=frame.stream)
        except Exception as exc:  # a bad frame is answered, never allowed to close the socket
            if not isinstance(exc, StreamingError):
                logger.exception("could not handle a frame")
            await self._send_error(exc, request=protocol.request_id_of(text_data))

    async def stream_frame(self, event: dict[str, Any]) -> None:
        """A frame of one of this client's streams, already encoded once for all its sockets."""
        await self.send(text_data=event["frame"])

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    async def _send_error(self, error: Exception, *, request: str | None = None) -> None:
        await self._send_frame(protocol.error_frame(error, request=request))
