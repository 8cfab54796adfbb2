"""The chat socket: frames in, service calls, frames out. No logic lives here that a test could not reach without
a socket; see `protocol` (parsing and building frames) and `streams` (starting, cancelling, replaying)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from streaming import errors, protocol, streams, tools
from streaming.budgets import address_hash
from streaming.clients import Client, client_for
from streaming.conf import app_settings
from streaming.deployment import metrics
from streaming.deployment.dispatch import Source, dispatch_each
from streaming.deployment.shared import get_shared
from streaming.deployment.worker import CLOSE_RESTARTING, worker
from streaming.errors import BadRequest, NotAllowed, StreamingError
from streaming.provider.upstream import demo_enabled

logger = logging.getLogger(__name__)

CLOSE_LOGIN_REQUIRED = 4401
CLOSE_NOT_ALLOWED = 4403  # logged in, but the host's rule (`STREAMING_CLIENT`) says this user may not chat


@dataclass
class Following:
    """Where a socket is in a stream it follows: the last place in the stream's record it was sent (None while the
    record is being written again), the last delta `seq`, and when it last heard of the stream (monotonic)."""

    pos: int | None = 0
    seq: int = 0
    heard: float = field(default_factory=time.monotonic)

    def missed_before(self, pos: int) -> bool:
        """Whether frames before place `pos` have not reached the socket (or where it stands is not known)."""
        return self.pos is None or pos > self.pos + 1


class ChatConsumer(AsyncWebsocketConsumer):
    client: Client

    async def __call__(self, scope: dict[str, Any], receive: Source, send: Callable[[dict[str, Any]], Any]) -> None:
        """Channels' `AsyncConsumer.__call__` with `dispatch_each` for its `await_many_dispatch`: a message reaches
        its handler two turns of the event loop sooner, at less CPU (see `deployment.dispatch`). `base_send` is the
        attribute Channels' `send` writes through (channels is pinned below 5 in pyproject.toml; every socket test
        goes through here)."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        with contextlib.suppress(StopConsumer):  # a handler ended the consumer: the socket closed
            await dispatch_each(sources, self.dispatch)

    async def connect(self) -> None:
        self.joined = False
        # The streams this socket follows (it saw the `start`, or the client resumed it), so that a duplicate is
        # dropped and a gap filled. Frames of streams it does not follow are not sent: the client could not place
        # them, and learns of such a stream from the conversation API and resumes it.
        self.following: dict[str, Following] = {}
        self.ended: set[str] = set()
        # Streams this socket was told are late (`busy`): at most once each.
        self.told_busy: set[str] = set()
        self.busy_ms = app_settings.BUSY_MS
        self._rechecking: asyncio.Task[None] | None = None
        self._catching_up = asyncio.Lock()  # a recheck and the frames arriving meanwhile take turns
        await self.accept()
        if not worker.on_duty:  # the worker's first socket, or the first since a test stopped the duties
            worker.start(self.channel_layer)
        if worker.draining:  # this worker is restarting: the client reconnects to another one at once
            await self.close(code=CLOSE_RESTARTING)
            return
        user = self.scope.get("user")
        client = await database_sync_to_async(client_for)(user=user, session=self.scope.get("session"))
        if client is None:
            logged_in = user is not None and user.is_authenticated
            await self._send_error(NotAllowed("You may not chat here.") if logged_in else errors.LoginRequired())
            await self.close(code=CLOSE_NOT_ALLOWED if logged_in else CLOSE_LOGIN_REQUIRED)
            return
        self.client = client
        # Where the socket comes from (daphne's `--proxy-headers` puts a proxy's X-Forwarded-For here), hashed.
        self.address = address_hash((self.scope.get("client") or [None])[0])
        self.limits = streams.current_limits()
        await self.channel_layer.group_add(self.client.group, self.channel_name)
        self.joined = True
        await worker.socket_opened(self.client, self.channel_name)
        offered = tools.offered_tools(caller=self.client, model=self.limits.models[0])
        listed: list[protocol.OfferedTool] = [{"name": t.name, "description": t.description} for t in offered]
        await self._send_frame(protocol.ready_frame(limits=self.limits, demo=demo_enabled(), tools=listed))

    async def disconnect(self, code: int) -> None:
        if self._rechecking is not None:
            self._rechecking.cancel()
        if self.joined:
            worker.socket_closed(self.client, self.channel_name)
            await self.channel_layer.group_discard(self.client.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.joined:
            return  # refused at connect (login required, or restarting) and closing: nothing it sends is read
        if text_data is None:
            await self._send_error(BadRequest("Send JSON in text frames; binary frames are not accepted."))
            return
        try:
            frame = protocol.parse_client_frame(text_data, self.limits)
            if isinstance(frame, protocol.Prompt):
                await self._start(frame)
            elif isinstance(frame, protocol.Cancel):
                await streams.stream_cancel(client=self.client, stream=frame.stream, layer=self.channel_layer)
            else:
                await self._resume(frame)
        except Exception as exc:  # a bad frame is answered, never allowed to close the socket
            if not isinstance(exc, StreamingError):
                logger.error("could not handle a frame: %s at:\n%s", errors.describe(exc), errors.where(exc))
            await self._send_error(exc, request=protocol.request_id_of(text_data))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler, a hop to the database thread. This
        # consumer reaches the database only through `database_sync_to_async`, which closes them itself in that
        # thread, so the hop is skipped: it would make every frame, and above all every prompt of a burst, wait for
        # the database thread behind whatever it is doing (docs/performance.md).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _start(self, prompt: protocol.Prompt) -> None:
        """Start a stream and send its `start` to this socket at once: its copy through the client's group may be
        lost (the first second after a Redis restart, before the layer subscribes again), and a socket that never
        saw a stream's `start` would not follow it."""
        start = await streams.stream_start(
            client=self.client, prompt=prompt, layer=self.channel_layer, address=self.address
        )
        async with self._catching_up:
            if start["stream"] not in self.following and start["stream"] not in self.ended:
                self._follow(start["stream"], Following())
                await self._send_frame(start)

    async def worker_restarting(self, event: dict[str, Any]) -> None:
        """This worker is about to exit: its streams have ended and their ends were sent before this."""
        await self.close(code=CLOSE_RESTARTING)

    async def stream_frame(self, event: dict[str, Any]) -> None:
        """A frame of one of this client's streams, encoded once for all its sockets."""
        async with self._catching_up:
            await self._relay(event)

    async def _relay(self, event: dict[str, Any]) -> None:
        stream, kind, pos = event["stream"], event["kind"], event.get("pos")
        if stream in self.ended:
            return
        if kind == "start":
            if stream in self.following:
                return  # this socket asked, and was sent its `start` already
            self._follow(stream, Following())
        elif (following := self.following.get(stream)) is None:
            return
        elif kind == "busy":
            if stream in self.told_busy:
                return
            self.told_busy.add(stream)
        elif pos is not None:
            following.heard = time.monotonic()
            if following.pos is not None and pos <= following.pos:
                return
            if kind == "delta":
                await self._tell_if_late(stream, event)
            if following.missed_before(pos):
                if not await self._fill(stream, following, until=pos):
                    return  # the store is down: the recheck sends what was missed once it is back
                if stream in self.ended or (following.pos is not None and pos <= following.pos):
                    return  # the catch-up sent it, or the end
                if following.missed_before(pos):
                    return  # the record has a hole until the stream writes it again: the next frame fills it
            following.pos, following.seq = pos, event.get("seq") or following.seq
        if event["end"]:
            self._end(stream)
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

    async def _resume(self, resume: protocol.Resume) -> None:
        replay = await streams.stream_replay(
            client=self.client, stream=resume.stream, after=resume.after, pos=resume.pos
        )
        key = str(resume.stream)
        async with self._catching_up:
            self.ended.discard(key)
            self._follow(key, Following(pos=None, seq=resume.after))
            await self._deliver(key, self.following[key], replay)

    async def _fill(self, stream: str, following: Following, *, until: int) -> bool:
        """Send the frames before place `until` that the socket missed, from the stream's record: they were kept
        there before they were sent. False when the store could not be read."""
        if following.pos is None:
            return await self._catch_up(stream, following)
        try:
            record = await get_shared().entries_after(stream, following.pos)
        except Exception as exc:
            logger.warning("stream %s: could not fill a gap: %s", stream, errors.describe(exc.__cause__ or exc))
            return False
        for entry in record.entries:
            if entry.pos >= until:
                break
            await self.send(text_data=entry.frame)
            following.pos, following.seq = entry.pos, entry.seq or following.seq
            if entry.end:
                self._end(stream)
                break
        return True

    async def _catch_up(self, stream: str, following: Following) -> bool:
        """Send what the socket missed of a stream: a gap, or the end that never came (see `recheck`); False when
        neither the stream's record nor the log could be read."""
        try:
            replay = await streams.stream_replay(
                client=self.client, stream=uuid.UUID(stream), after=following.seq, pos=following.pos
            )
        except Exception as exc:
            logger.warning("stream %s: could not catch a socket up: %s", stream, errors.describe(exc.__cause__ or exc))
            return False
        await self._deliver(stream, following, replay)
        return True

    async def _deliver(self, stream: str, following: Following, replay: streams.Replay) -> None:
        for frame in replay.frames:
            await self.send(text_data=frame)
        following.pos, following.seq = replay.pos, replay.seq
        if replay.ended:
            self._end(stream)

    def _follow(self, stream: str, following: Following) -> None:
        self.following[stream] = following
        if self._rechecking is None or self._rechecking.done():
            self._rechecking = asyncio.create_task(self.recheck(), name=f"recheck-{self.channel_name}")

    def _end(self, stream: str) -> None:
        self.ended.add(stream)
        self.following.pop(stream, None)
        self.told_busy.discard(stream)

    async def recheck(self) -> None:
        """While the socket follows streams, look again at each one it has not heard of for
        `STREAMING_RECHECK_SECONDS`: a frame lost on the way (Redis restarted, a message expired) is found in the
        stream's record, and an end that was never sent in the log. Without this a client would wait forever."""
        interval = app_settings.RECHECK_SECONDS
        while self.following:
            await asyncio.sleep(interval)
            for stream, following in list(self.following.items()):
                if time.monotonic() - following.heard < interval or stream in self.ended:
                    continue
                following.heard = time.monotonic()
                async with self._catching_up:
                    if stream in self.following:
                        await self._catch_up(stream, following)

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    async def _send_error(self, error: Exception, *, request: str | None = None) -> None:
        metrics.record_refusal(error)
        await self._send_frame(protocol.error_frame(error, request=request))
