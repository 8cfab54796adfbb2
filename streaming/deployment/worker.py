"""This process as one worker of a deployment: its name, its background duties, and how it stops.

Duties, started with the first request or socket of any kind (a load balancer's health check is enough), with no
wrapper around the host's ASGI application:
- heartbeat: tell the others this worker lives, and which clients have a socket open here;
- sweep: log the streams of workers that stopped beating as interrupted, and tell their clients (or, with
  `STREAMING_TAKEOVER`, go on with them here: see `takeover`);
- control: carry out a `cancel` that a socket on another worker received for a stream running here;
- lag: measure how late the event loop runs, which tells when the worker is overloaded (see `lag`).

On SIGTERM (daphne's shutdown) the worker takes no new prompts, lets its streams run for
`STREAMING_SHUTDOWN_GRACE` seconds, then stops the rest and logs them as interrupted (with `STREAMING_TAKEOVER`, it
lets go of them for another worker to go on with, and tells the others it is gone), and closes its sockets with
close code 4012 ("restarting"), so that their clients reconnect to another worker at once and resume; only then does
the process exit. That drain is daphne's (the server this app supports in production); under another ASGI server the
duties run, but a SIGTERM ends the process without it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started
from django.dispatch import receiver

from streaming import errors, protocol, selectors, services
from streaming.clients import Client
from streaming.conf import app_settings
from streaming.deployment import metrics, running
from streaming.deployment.lag import loop_lag
from streaming.deployment.publish import frame_event, publish_event
from streaming.deployment.shared import get_shared
from streaming.deployment.takeover import take_over
from streaming.provider.upstream import cancel_response, close_clients, takes_over
from streaming.relay.ending import Ending, end_frame
from streaming.relay.handover import CannotResume
from streaming.relay.tool_calls import calls_in
from streaming.relay.transcript import Transcript

logger = logging.getLogger(__name__)

WORKERS_GROUP = "chat.workers"
CLOSE_RESTARTING = 4012  # the 1012 of RFC 6455 as an application code: autobahn refuses to send 1012 itself
# How long a draining worker waits for its sockets to take their close before the process exits anyway.
CLOSE_SECONDS = 5


class Worker:
    def __init__(self) -> None:
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.started = datetime.now(UTC)
        self.draining = False
        self.sockets: collections.Counter[str] = collections.Counter()
        self.channels: set[str] = set()  # the channel-layer channel of each socket open here
        self._all_closed = asyncio.Event()
        self._duties: list[asyncio.Task[None]] = []
        # Workers seen without a heartbeat, and since when (monotonic): one is dead only once it stays missing.
        self.missing: dict[str, float] = {}
        # Workers that said they are gone (they drained and handed their streams over): dead at once.
        self.gone: set[str] = set()
        self._sweep_now = asyncio.Event()

    def start(self, layer: BaseChannelLayer) -> None:
        """Start the duties once, on the running event loop."""
        if self._duties:
            return
        self._duties = [
            asyncio.create_task(self._beat(), name="worker-heartbeat"),
            asyncio.create_task(self._sweep(layer), name="worker-sweep"),
            asyncio.create_task(self._listen(layer), name="worker-control"),
            asyncio.create_task(loop_lag.watch(running.awaiting_first_words), name="worker-lag"),
        ]
        _drain_on_daphne_shutdown(self)

    @property
    def on_duty(self) -> bool:
        return bool(self._duties)

    async def socket_opened(self, client: Client, channel: str) -> None:
        self.sockets[client.key] += 1
        self.channels.add(channel)
        self._all_closed.clear()
        try:
            await get_shared().mark_present([client.key])
        except errors.StoreUnavailable as exc:  # the next heartbeat says so again; the socket works without it
            logger.warning("could not mark a client present: %s", errors.describe(exc.__cause__ or exc))

    def socket_closed(self, client: Client, channel: str) -> None:
        self.sockets[client.key] -= 1
        if self.sockets[client.key] <= 0:
            del self.sockets[client.key]
        self.channels.discard(channel)
        if not self.channels:
            self._all_closed.set()

    async def drain(self, layer: BaseChannelLayer | None = None) -> None:
        """Take no new prompts; give running streams the grace period, then stop and log them as interrupted (with
        `STREAMING_TAKEOVER`, let go of them and tell the other workers, which take them over at once); then close
        every socket with `CLOSE_RESTARTING`."""
        self.draining = True
        layer = layer or get_channel_layer()
        logger.info("worker %s draining: %d streams running", self.id, running.count())
        if takes_over() and get_shared().crosses_processes:
            await running.hand_over_within(app_settings.SHUTDOWN_GRACE)
            await self._say_gone(layer)
        else:
            error = errors.Interrupted("The server restarted before this answer was finished.")
            await running.finish_within(app_settings.SHUTDOWN_GRACE, error)
        await self._close_sockets(layer)
        await close_clients()

    async def _say_gone(self, layer: BaseChannelLayer) -> None:
        """Stop beating, and tell the other workers this one is gone, so that they need not wait out
        `STREAMING_WORKER_TIMEOUT` (a heartbeat that is missing may only be a Redis restart) before taking its
        streams over."""
        for duty in self._duties:
            if duty.get_name() == "worker-heartbeat":
                duty.cancel()
        try:
            await get_shared().forget_worker(self.id)
            await layer.group_send(WORKERS_GROUP, {"type": "worker.gone", "worker": self.id})
        except Exception as exc:  # the others find it gone within the timeout all the same
            logger.warning("could not say this worker is gone: %s", errors.describe(exc.__cause__ or exc))

    async def _close_sockets(self, layer: BaseChannelLayer) -> None:
        """Ask each socket to close with `CLOSE_RESTARTING`, through the layer, so that it does so after the end
        frames sent before; wait a little for them to go."""
        for channel in list(self.channels):
            try:
                await layer.send(channel, {"type": "worker.restarting"})
            except Exception as exc:
                logger.warning("could not ask a socket to close: %s", errors.describe(exc))
        if self.channels:
            try:
                await asyncio.wait_for(self._all_closed.wait(), CLOSE_SECONDS)
            except TimeoutError:
                logger.warning("worker %s: %d sockets had not closed; exiting anyway", self.id, len(self.channels))

    async def stop_duties(self) -> None:
        """Stop the background duties, close the upstream client and take prompts again (for tests, which swap the
        channel layer and the settings)."""
        for duty in self._duties:
            duty.cancel()
        await asyncio.gather(*self._duties, return_exceptions=True)
        self._duties = []
        self.draining = False
        loop_lag.reset()
        await close_clients()

    async def _beat(self) -> None:
        interval = min(app_settings.WORKER_TIMEOUT, app_settings.PRESENCE_SECONDS) / 3
        while True:
            try:
                shared = get_shared()
                await shared.heartbeat(self.id)
                await shared.mark_present(list(self.sockets))
            except Exception as exc:
                logger.warning("worker heartbeat failed: %s", errors.describe(exc.__cause__ or exc))
            await asyncio.sleep(interval)

    async def _sweep(self, layer: BaseChannelLayer) -> None:
        while True:
            self._sweep_now.clear()
            try:
                await sweep_dead_workers(
                    layer=layer, worker=self.id, started=self.started, missing=self.missing, gone=self.gone
                )
            except Exception as exc:
                logger.warning("sweep for dead workers failed: %s", errors.describe(exc.__cause__ or exc))
            with contextlib.suppress(TimeoutError):  # a worker that says it is gone is swept at once
                await asyncio.wait_for(self._sweep_now.wait(), app_settings.WORKER_TIMEOUT / 3)

    async def _listen(self, layer: BaseChannelLayer) -> None:
        while True:
            try:
                channel = await layer.new_channel("worker.")
                await layer.group_add(WORKERS_GROUP, channel)
                while True:
                    message = await layer.receive(channel)
                    if message.get("type") == "worker.cancel":
                        running.stop_local(uuid.UUID(message["stream"]))
                    elif message.get("type") == "worker.gone" and message.get("worker") != self.id:
                        self.gone.add(message["worker"])
                        self._sweep_now.set()
            except Exception as exc:
                logger.warning("worker control channel failed; listening again shortly: %s", errors.describe(exc))
                await asyncio.sleep(1)


async def sweep_dead_workers(
    *,
    layer: BaseChannelLayer,
    worker: str,
    started: datetime,
    missing: dict[str, float] | None = None,
    gone: set[str] | None = None,
) -> int:
    """Log every stream of a dead worker as interrupted, keeping what its record has of its answer; or, with
    `STREAMING_TAKEOVER`, go on with it here if this worker claims it first (see `takeover`).

    With Redis, a worker is dead once its heartbeat has been missing for `STREAMING_WORKER_TIMEOUT` as this sweeper
    saw it (`missing`, kept across sweeps): a heartbeat that just expired may be a Redis restart, which wipes every
    heartbeat, and a live worker beats again well within that time. A worker in `gone` said it has gone (it drained):
    it is dead at once, and forgotten once it has no stream left.

    Without Redis a worker sees no other worker's heartbeat, so any other worker's stream looks orphaned. One that
    was started before this process is a predecessor's; one started since can only be a live worker's that shares the
    database (several workers without Redis): it is left alone, and the error logged.
    """
    shared = get_shared()
    running_elsewhere = await database_sync_to_async(selectors.streaming_exchanges)(not_of_worker=worker)
    owners = {owner for _, _, owner, _ in running_elsewhere}
    dead = owners - await shared.live_workers(owners)
    if shared.crosses_processes and missing is not None:
        dead = _missing_for_long(dead, owners, missing)
    if gone is not None:
        dead |= gone & owners
        gone &= owners
    swept = 0
    for stream, client_key, owner, created in running_elsewhere:
        if owner not in dead:
            continue
        if not shared.crosses_processes and created >= started:
            _report_unshared_worker(owner)
            continue
        abandoned = None  # a background response no one will read on
        if takes_over() and shared.crosses_processes:
            try:
                age = (datetime.now(UTC) - created).total_seconds()
                if await take_over(layer=layer, stream=stream, owner=owner, worker=worker, age=age):
                    logger.warning("stream %s of dead worker %s taken over here", stream, owner)
                    swept += 1
                continue  # here, or by another worker
            except CannotResume as exc:
                logger.warning("stream %s of dead worker %s cannot be taken over: %s", stream, owner, exc)
                abandoned = exc.response
                metrics.record_takeover("interrupted")
            except errors.StoreUnavailable:
                raise  # Redis is away: the next sweep tries again
            except Exception as exc:  # a fault of the take-over must not leave the stream running for good
                failure, where = errors.describe(exc), errors.where(exc)
                logger.error(
                    "stream %s of dead worker %s: taking it over failed: %s at:\n%s", stream, owner, failure, where
                )
                metrics.record_takeover("interrupted")
        if await _interrupt(layer=layer, stream=stream, client_key=client_key, owner=owner):
            logger.warning("stream %s of dead worker %s logged as interrupted", stream, owner)
            swept += 1
            if abandoned:
                await cancel_response(abandoned)
    return swept


def _missing_for_long(dead: set[str], owners: set[str], missing: dict[str, float]) -> set[str]:
    now = time.monotonic()
    for owner in [owner for owner in missing if owner not in dead or owner not in owners]:
        del missing[owner]  # beating again, or no stream left to sweep
    for owner in dead:
        missing.setdefault(owner, now)
    return {owner for owner in dead if now - missing[owner] >= app_settings.WORKER_TIMEOUT}


async def _interrupt(*, layer: BaseChannelLayer, stream: uuid.UUID, client_key: str, owner: str) -> bool:
    """End a dead worker's stream: the row keeps the answer its record holds, the sockets get the end."""
    shared = get_shared()
    record = await shared.entries_after(str(stream), 0)
    frames = [entry.frame for entry in record.entries if not entry.end]
    transcript, calls = Transcript.of_frames(frames), calls_in(orjson.loads(frame) for frame in frames)
    error = errors.Interrupted("The server answering this stopped before it finished. The answer so far is kept.")
    interrupted = await database_sync_to_async(services.exchange_interrupt)(
        exchange_id=stream, transcript=transcript, calls=calls, error=error, owner=owner
    )
    if interrupted:
        frame = end_frame(stream, Ending(status="interrupted", last_seq=len(transcript.deltas), error=error))
        event = frame_event("error", stream, protocol.encode(frame), end=True)
        await publish_event(shared=shared, layer=layer, group=Client(key=client_key).group, event=event)
    return interrupted


@receiver(request_started)
async def _start_with_the_first_request(sender: type, scope: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The duties start with the worker's first HTTP request (a health check, a page), so that a restarted worker
    sweeps what its predecessor left as soon as anything reaches it; the socket's `connect` starts them too. Only
    under an ASGI server: a WSGI request, or a test client's, has no event loop that lives on."""
    if not worker.on_duty and scope is not None and issubclass(sender, ASGIHandler):
        worker.start(get_channel_layer())


_reported_workers: set[str] = set()


def _report_unshared_worker(owner: str) -> None:
    if owner not in _reported_workers:
        _reported_workers.add(owner)
        logger.error(
            "worker %s shares this database but not this worker's state: several workers need a Redis channel layer. "
            "Its streams are not swept here.",
            owner,
        )


def _drain_on_daphne_shutdown(worker: Worker) -> None:
    """Under daphne, drain on SIGTERM before the reactor stops, and make any other shutdown wait for `drain` too.

    A 'before shutdown' trigger alone is not enough: daphne's own (`Server.kill_all_applications`, added when daphne
    starts, so called first) cancels every application instance, and a socket whose consumer is gone gets neither
    its streams' ends nor its close; it is dropped when the process exits. So SIGTERM is taken the way Twisted takes
    it (the handler calls into the reactor), and the reactor stops once the drain is done. Other stops (SIGINT) still
    give the streams their grace in the trigger, but drop the sockets.
    """
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import defer, reactor
    from twisted.internet.error import ReactorNotRunning

    if not reactor.running:
        return  # imported, not serving (the tests import daphne): leave this process's signals alone
    draining: asyncio.Future[None] | None = None

    def drain() -> asyncio.Future[None]:
        nonlocal draining
        if draining is None:
            draining = asyncio.ensure_future(worker.drain())
        return draining

    def stop_reactor(_: asyncio.Future[None]) -> None:
        with contextlib.suppress(ReactorNotRunning):  # already stopping: a second SIGTERM, or a SIGINT
            reactor.stop()

    def drain_then_stop() -> None:
        drain().add_done_callback(stop_reactor)

    if threading.current_thread() is threading.main_thread():  # not so under runserver's autoreloader
        signal.signal(signal.SIGTERM, lambda _signum, _frame: reactor.callFromThread(drain_then_stop))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.Deferred.fromFuture(drain()))


worker = Worker()
