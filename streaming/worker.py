"""This process as one worker of a deployment: its name, its background duties, and how it stops.

Duties, started with the first request of any kind (`start_duties`; a load balancer's health check is enough):
- heartbeat: tell the others this worker lives, and which clients have a socket open here;
- sweep: log the streams of workers that stopped beating as interrupted, and tell their clients;
- control: carry out a `cancel` that a socket on another worker received for a stream running here;
- lag: measure how late the event loop runs, which tells when the worker is overloaded (see `lag`).

On SIGTERM (daphne's shutdown) the worker takes no new prompts, lets its streams run for
`STREAMING_SHUTDOWN_GRACE` seconds, then stops the rest and logs them as interrupted before the process exits.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import socket
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from streaming import errors, protocol, selectors, services
from streaming.clients import Client
from streaming.generation import frame_event
from streaming.lag import loop_lag
from streaming.publish import publish_event
from streaming.shared import get_shared
from streaming.upstream import close_clients

logger = logging.getLogger(__name__)

WORKERS_GROUP = "chat.workers"


class Worker:
    def __init__(self) -> None:
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.started = datetime.now(UTC)
        self.draining = False
        self.sockets: collections.Counter[str] = collections.Counter()
        self._duties: list[asyncio.Task[None]] = []

    def start(self, layer: BaseChannelLayer) -> None:
        """Start the duties once, on the running event loop."""
        if self._duties:
            return
        self._duties = [
            asyncio.create_task(self._beat(), name="worker-heartbeat"),
            asyncio.create_task(self._sweep(layer), name="worker-sweep"),
            asyncio.create_task(self._listen(layer), name="worker-control"),
            asyncio.create_task(loop_lag.watch(), name="worker-lag"),
        ]
        _drain_on_daphne_shutdown(self)

    @property
    def on_duty(self) -> bool:
        return bool(self._duties)

    async def socket_opened(self, client: Client) -> None:
        self.sockets[client.key] += 1
        await get_shared().mark_present([client.key])

    def socket_closed(self, client: Client) -> None:
        self.sockets[client.key] -= 1
        if self.sockets[client.key] <= 0:
            del self.sockets[client.key]

    async def drain(self) -> None:
        """Take no new prompts; give running streams the grace period, then stop and log them as interrupted."""
        from streaming import streams

        self.draining = True
        logger.info("worker %s draining: %d streams running", self.id, streams.running_count())
        try:
            await asyncio.wait_for(streams.streams_finished(), settings.STREAMING_SHUTDOWN_GRACE)
        except TimeoutError:
            streams.stop_all(errors.Interrupted("The server restarted before this answer was finished."))
            await streams.streams_finished()
        await close_clients()

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
        interval = min(settings.STREAMING_WORKER_TIMEOUT, settings.STREAMING_PRESENCE_SECONDS) / 3
        while True:
            try:
                shared = get_shared()
                await shared.heartbeat(self.id)
                await shared.mark_present(list(self.sockets))
            except Exception:
                logger.exception("worker heartbeat failed")
            await asyncio.sleep(interval)

    async def _sweep(self, layer: BaseChannelLayer) -> None:
        while True:
            try:
                await sweep_dead_workers(layer=layer, worker=self.id, started=self.started)
            except Exception:
                logger.exception("sweep for dead workers failed")
            await asyncio.sleep(settings.STREAMING_WORKER_TIMEOUT / 3)

    async def _listen(self, layer: BaseChannelLayer) -> None:
        from streaming import streams

        while True:
            try:
                channel = await layer.new_channel("worker.")
                await layer.group_add(WORKERS_GROUP, channel)
                while True:
                    message = await layer.receive(channel)
                    if message.get("type") == "worker.cancel":
                        streams.stop_local(uuid.UUID(message["stream"]))
            except Exception:
                logger.exception("worker control channel failed; listening again shortly")
                await asyncio.sleep(1)


async def sweep_dead_workers(*, layer: BaseChannelLayer, worker: str, started: datetime) -> int:
    """Log every stream of a dead worker as interrupted, keeping what the replay buffer has of its answer.

    Without Redis a worker sees no other worker's heartbeat, so any other worker's stream looks orphaned. One that
    was started before this process is a predecessor's; one started since can only be a live worker's that shares the
    database (several workers without Redis): it is left alone, and the error logged.
    """
    shared = get_shared()
    running = await database_sync_to_async(selectors.streaming_exchanges)(not_of_worker=worker)
    alive = await shared.live_workers({owner for _, _, owner, _ in running})
    swept = 0
    for stream, client_key, owner, created in running:
        if owner in alive:
            continue
        if not shared.crosses_processes and created >= started:
            _report_unshared_worker(owner)
            continue
        texts = await shared.deltas_after(str(stream), 0)
        ends = list(itertools.accumulate(len(text) for text in texts))
        error = errors.Interrupted("The server answering this stopped before it finished. The answer so far is kept.")
        interrupted = await database_sync_to_async(services.exchange_interrupt)(
            exchange_id=stream, answer="".join(texts), delta_ends=ends, error=error
        )
        if interrupted:
            logger.warning("stream %s of dead worker %s logged as interrupted", stream, owner)
            frame = protocol.error_frame(error, stream=stream)
            event = frame_event(frame, end=True)
            await publish_event(shared=shared, layer=layer, group=Client(key=client_key).group, event=event)
            swept += 1
    return swept


def start_duties(application: Any) -> Any:
    """ASGI middleware: the worker's duties start with its first request, so that a restarted worker sweeps what its
    predecessor left as soon as anything (a health check, a page, a socket) reaches it."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not worker.on_duty and scope["type"] in ("http", "websocket"):
            worker.start(get_channel_layer())
        await application(scope, receive, send)

    return app


_reported_workers: set[str] = set()


def _report_unshared_worker(owner: str) -> None:
    if owner not in _reported_workers:
        _reported_workers.add(owner)
        logger.error(
            "worker %s shares this database but not this worker's state: several workers need REDIS_URL. "
            "Its streams are not swept here.",
            owner,
        )


def _drain_on_daphne_shutdown(worker: Worker) -> None:
    """Under daphne, make its shutdown wait for `drain`: Twisted waits on what a 'before shutdown' trigger returns."""
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import defer, reactor

    def drain() -> Any:
        return defer.Deferred.fromFuture(asyncio.ensure_future(worker.drain()))

    reactor.addSystemEventTrigger("before", "shutdown", drain)


worker = Worker()
