"""Going on here with the answer of a worker that died or drained (`STREAMING_TAKEOVER`; see `relay.handover`).

The sweep (see `worker`) finds a dead worker's streams. For each, every live worker that notices reads what the dead
one left, and tries to claim the stream in the log: a conditional update of the row's worker, which exactly one of
them wins. The winner runs the stream as a generation of its own, re-attached to the provider's response, and sends
its frames on from the next place in the stream's record, so its client's sockets see one stream without a gap.
"""

from __future__ import annotations

import logging
import uuid

import orjson
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer

from streaming import services, tools
from streaming.deployment import running
from streaming.deployment.shared import get_shared
from streaming.relay.generation import Generation
from streaming.relay.handover import CannotResume, Handover, resume_of

logger = logging.getLogger(__name__)


async def take_over(*, layer: BaseChannelLayer, stream: uuid.UUID, owner: str, worker: str, age: float) -> bool:
    """Go on with the stream of dead worker `owner` in this worker (`worker`). True if it runs here now, False if
    another worker claimed it first.

    Raises `CannotResume` when it cannot go on anywhere: it never began a round that can be re-attached to, its
    record has a hole, or a tool was running that may not run twice. The caller then ends it interrupted.
    """
    shared = get_shared()
    handover = Handover.of_fields(await shared.handover(str(stream)))
    if handover is None:
        raise CannotResume("Nothing was kept to go on with.")
    record = await shared.entries_after(str(stream), 0)
    if not record.whole or any(entry.end for entry in record.entries):
        raise CannotResume("Its record is not whole, or it has ended.", response=handover.response)
    registered = tools.registered_tools()
    idempotent = {name for name, tool in registered.items() if tool.idempotent}
    resume = resume_of(handover, [orjson.loads(entry.frame) for entry in record.entries], idempotent=idempotent)
    claimed = await database_sync_to_async(services.exchange_claim)(exchange_id=stream, owner=owner, worker=worker)
    if not claimed:
        return False
    offered = [registered[name] for name in handover.plan.tools if name in registered]
    generation = Generation.of_handover(
        stream=stream,
        handover=handover,
        resume=resume,
        entries=record.entries,
        offered=offered,
        layer=layer,
        age=age,
    )
    running.add(generation)
    return True
