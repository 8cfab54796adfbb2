"""The in-memory channel layer: Channels' semantics, at a lower cost per message."""

from __future__ import annotations

import asyncio

import channels.layers
import pytest
from channels.exceptions import ChannelFull

from streaming.deployment import layers
from streaming.deployment.layers import LocalChannelLayer


class Clock:
    """Stands in for the `time` module that Channels' layer and ours read: it moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(channels.layers, "time", clock)
    monkeypatch.setattr(layers, "time", clock)
    return clock


async def test_a_group_message_reaches_every_member_once_and_in_order():
    layer = LocalChannelLayer()
    members = [await layer.new_channel() for _ in range(3)]
    for channel in members:
        await layer.group_add("client.alice", channel)
    outsider = await layer.new_channel()
    await layer.group_add("client.bob", outsider)

    for seq in (1, 2):
        await layer.group_send("client.alice", {"type": "stream.frame", "seq": seq})

    for channel in members:
        assert [(await layer.receive(channel))["seq"] for _ in range(2)] == [1, 2]
        assert channel not in layer.channels  # drained: nothing left behind
    assert outsider not in layer.channels


async def test_a_receiver_gets_its_own_copy_of_a_message():
    layer = LocalChannelLayer()
    message = {"type": "stream.frame", "seq": 1}
    await layer.send("specific.a", message)
    message["seq"] = 2
    assert await layer.receive("specific.a") == {"type": "stream.frame", "seq": 1}


async def test_a_full_member_misses_a_group_message_and_the_others_get_it():
    layer = LocalChannelLayer(capacity=1)
    await layer.group_add("client.alice", "specific.full")
    await layer.group_add("client.alice", "specific.free")
    await layer.send("specific.full", {"type": "first"})
    with pytest.raises(ChannelFull):
        await layer.send("specific.full", {"type": "second"})

    await layer.group_send("client.alice", {"type": "frame"})

    assert (await layer.receive("specific.free"))["type"] == "frame"
    assert (await layer.receive("specific.full"))["type"] == "first"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive("specific.full"), timeout=0.05)


async def test_a_member_stays_in_its_group_past_group_expiry(clock):
    layer = LocalChannelLayer(group_expiry=10)
    await layer.group_add("client.alice", "specific.tab")
    clock.advance(11)  # a tab open for longer than `group_expiry` (a day by default)

    await layer.group_send("client.alice", {"type": "stream.frame", "seq": 1})

    assert "specific.tab" in layer.groups.get("client.alice", {})
    assert (await asyncio.wait_for(layer.receive("specific.tab"), timeout=5))["seq"] == 1


async def test_an_expired_message_is_dropped_and_its_channel_stays_in_its_groups(clock):
    layer = LocalChannelLayer(expiry=5)
    await layer.group_add("client.alice", "specific.tab")
    await layer.group_send("client.alice", {"type": "stream.frame", "seq": 1})
    clock.advance(6)  # not taken within `expiry`

    await layer.group_send("client.bob", {"type": "stream.frame"})  # any send or receive looks for expired messages

    assert "specific.tab" not in layer.channels  # the message and its queue are gone
    assert "specific.tab" in layer.groups.get("client.alice", {})
    await layer.group_send("client.alice", {"type": "stream.frame", "seq": 2})
    assert (await asyncio.wait_for(layer.receive("specific.tab"), timeout=5))["seq"] == 2
    assert "specific.tab" not in layer.channels


async def test_a_receiver_waiting_on_an_empty_channel_keeps_it_through_a_cleaning(clock):
    layer = LocalChannelLayer(expiry=5)
    await layer.group_add("client.alice", "specific.tab")
    receiving = asyncio.create_task(layer.receive("specific.tab"))
    await asyncio.sleep(0)  # let it start waiting
    clock.advance(6)

    await layer.group_send("client.alice", {"type": "frame", "seq": 1})  # looks for expired messages, then sends

    assert (await asyncio.wait_for(receiving, timeout=5))["seq"] == 1


async def test_a_member_whose_backlog_expires_is_no_longer_waited_for(clock):
    layer = LocalChannelLayer(expiry=5)
    await layer.group_add("client.alice", "specific.tab")
    for seq in range(layers.BACKLOG):
        await layer.group_send("client.alice", {"type": "frame", "seq": seq})
    waiting = asyncio.create_task(layer.caught_up("client.alice"))
    await asyncio.sleep(0)  # let it start waiting
    clock.advance(6)

    await layer.group_send("client.bob", {"type": "frame"})

    await asyncio.wait_for(waiting, timeout=5)
    assert not layer.behind("client.alice")


async def test_a_member_with_a_backlog_is_behind_until_it_has_taken_enough():
    layer = LocalChannelLayer()
    members = [await layer.new_channel() for _ in range(2)]
    for channel in members:
        await layer.group_add("client.alice", channel)
    for seq in range(layers.BACKLOG - 1):
        await layer.group_send("client.alice", {"type": "frame", "seq": seq})
    assert not layer.behind("client.alice")
    await asyncio.wait_for(layer.caught_up("client.alice"), timeout=5)  # nothing to wait for

    await layer.group_send("client.alice", {"type": "frame", "seq": layers.BACKLOG - 1})
    assert layer.behind("client.alice")
    waiting = asyncio.create_task(layer.caught_up("client.alice"))
    await layer.receive(members[0])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiting), timeout=0.05)  # the second member is still behind
    await layer.receive(members[1])
    await asyncio.wait_for(waiting, timeout=5)
    assert not layer.behind("client.alice")


async def test_a_member_that_leaves_is_not_waited_for():
    layer = LocalChannelLayer()
    await layer.group_add("client.alice", "specific.leaving")
    for seq in range(layers.BACKLOG):
        await layer.group_send("client.alice", {"type": "frame", "seq": seq})
    waiting = asyncio.create_task(layer.caught_up("client.alice"))
    await asyncio.sleep(0)  # let it start waiting
    await layer.group_discard("client.alice", "specific.leaving")
    await asyncio.wait_for(waiting, timeout=5)
