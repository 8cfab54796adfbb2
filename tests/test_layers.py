"""The in-memory channel layer: Channels' semantics, at a lower cost per message."""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import ChannelFull

from streaming import layers
from streaming.layers import LocalChannelLayer


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


async def test_expired_messages_and_their_channels_are_dropped(monkeypatch):
    monkeypatch.setattr(layers, "CLEANING_INTERVAL", 0)
    layer = LocalChannelLayer(expiry=-1)  # every message is already expired when it is stored
    await layer.group_add("client.alice", "specific.gone")
    await layer.send("specific.gone", {"type": "stale"})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive("specific.other"), timeout=0.05)

    assert "specific.gone" not in layer.channels
    assert "specific.gone" not in layer.groups.get("client.alice", {})


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
