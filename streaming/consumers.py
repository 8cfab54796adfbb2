"""The chat socket: frames in, service calls, frames out. No logic lives here that a test could not reach without
a socket; see `protocol` (parsing and building frames) and `streams` (starting, cancelling, resuming)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from streaming import protocol, streams
from streaming.clients import Client, client_of
from streaming.errors import BadRequest, NotAllowed, StreamingError
from streaming.shared import get_shared
from streaming.upstream import demo_enabled
from streaming.worker import worker

logger = logging.getLogger(__name__)

CLOSE_LOGIN_REQUIRED = 4401


class ChatConsumer(AsyncWebsocketConsumer):
    client: Client

    async def connect(self) -> None:
        self.client = client_of(self.scope)
        self.joined = False
        # Per stream this socket follows (it saw the `start`, or the client resumed it): the last seq it was sent,
        # so that a duplicate is dropped and a gap filled. Frames of streams it does not follow are not sent: the
        # client could not place them, and learns of such a stream from the conversation API and resumes it.
        self.delivered: dict[str, int] = {}
        self.ended: set[str] = set()
        # Streams this socket was told are late (`busy`): at most once each.
        self.told_busy: set[str] = set()
        self.busy_ms = settings.STREAMING_BUSY_MS
        await self.accept()
        if settings.STREAMING_REQUIRE_LOGIN and not self.client.user_id:
            await self._send_error(NotAllowed("Log in to chat."))
            await self.close(code=CLOSE_LOGIN_REQUIRED)
            return
        self.limits = streams.current_limits()
        await self.channel_layer.group_add(self.client.group, self.channel_name)
        self.joined = True
        await worker.socket_opened(self.client)
        await self._send_frame(protocol.ready_frame(limits=self.limits, demo=demo_enabled()))

    async def disconnect(self, code: int) -> None:
        if self.joined:
            worker.socket_closed(self.client)
            await self.channel_layer.group_discard(self.client.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.joined:
            return  # refused at connect (login required) and closing: nothing it sends is read
        if text_data is None:
            await self._send_error(BadRequest("Send JSON in text frames; binary frames are not accepted."))
            return
        try:
            frame = protocol.parse_client_frame(text_data, self.limits)
            if isinstance(frame, protocol.Prompt):
                await streams.stream_start(client=self.client, prompt=frame, layer=self.channel_layer)
            elif isinstance(frame, protocol.Cancel):
                await streams.stream_cancel(client=self.client, stream=frame.stream, layer=self.channel_layer)
            else:
                await self._resume(frame.stream, frame.after)
        except Exception as exc:  # a bad frame is answered, never allowed to close the socket
            if not isinstance(exc, StreamingError):
                logger.exception("could not handle a frame")
            await self._send_error(exc, request=protocol.request_id_of(text_data))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler, a hop to the database thread. A stream
        # frame touches no database, and it is the one message that comes once per delta: skip the hop there.
        if message["type"] == "stream.frame":
            await self.stream_frame(message)
        else:
            await super().dispatch(message)

    async def stream_frame(self, event: dict[str, Any]) -> None:
        """A frame of one of this client's streams, encoded once for all its sockets."""
        stream, seq, kind = event["stream"], event["seq"], event["kind"]
        if stream in self.ended:
            return
        if kind == "start":
            self.delivered[stream] = 0
        elif stream not in self.delivered:
            return
        elif kind == "busy":
            if stream in self.told_busy:
                return
            self.told_busy.add(stream)
        elif seq is not None:
            last = self.delivered[stream]
            if seq <= last:
                return
            await self._tell_if_late(stream, event)
            if seq > last + 1:
                await self._send_missing(stream, after=last, until=seq - 1)
            self.delivered[stream] = seq
        if event["end"]:
            self.ended.add(stream)
            self.delivered.pop(stream, None)
            self.told_busy.discard(stream)
        await self.send(text_data=event["frame"])

    async def _tell_if_late(self, stream: str, event: dict[str, Any]) -> None:
        """Past `STREAMING_BUSY_MS` on the way here, a delta tells of an overloaded server: say so once per stream.

        A worker of an older release, during a rolling upgrade, sends no `sent`.
        """
        sent = event.get("sent")
        if sent is None or stream in self.told_busy:
            return
        late_ms = (time.time() - sent) * 1000
        if late_ms >= self.busy_ms:
            self.told_busy.add(stream)
            await self._send_frame(protocol.busy_frame(stream=stream, lag_ms=late_ms))

    async def _resume(self, stream: uuid.UUID, after: int) -> None:
        replay = await streams.stream_replay(client=self.client, stream=stream, after=after)
        key = str(stream)
        self.ended.discard(key)
        self.delivered[key] = after
        await self._send_deltas(key, after, replay.texts)
        if replay.end is not None:
            self.ended.add(key)
            self.delivered.pop(key, None)
            await self._send_frame(replay.end)

    async def _send_missing(self, stream: str, *, after: int, until: int) -> None:
        """Fill a gap from the replay buffer: deltas are kept there before they are sent."""
        texts = await get_shared().deltas_after(stream, after)
        await self._send_deltas(stream, after, texts[: until - after])

    async def _send_deltas(self, stream: str, after: int, texts: list[str]) -> None:
        for seq, text in enumerate(texts, start=after + 1):
            await self._send_frame({"type": "delta", "stream": stream, "seq": seq, "text": text})
            self.delivered[stream] = seq

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    async def _send_error(self, error: Exception, *, request: str | None = None) -> None:
        await self._send_frame(protocol.error_frame(error, request=request))
