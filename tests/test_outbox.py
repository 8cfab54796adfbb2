"""Coalescing, tested without a socket: what the relay promises about seq and latency."""

from __future__ import annotations

import asyncio

from streaming.relay.outbox import Outbox


class Recorder:
    """A send that can be held, to play a channel layer that is slow to take a message."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []  # (the send's number, its text), for the answer text
        self.parts: list[tuple[str, str, object]] = []  # every part as sent
        self.marks: list[object] = []  # the mark of each part as sent
        self.gate = asyncio.Event()
        self.gate.set()
        self.sending = asyncio.Event()

    async def __call__(self, kind: str, text: str, extra: object, mark: object = None) -> None:
        self.sending.set()
        await self.gate.wait()
        self.parts.append((kind, text, extra))
        self.marks.append(mark)
        if kind == "delta":
            self.sent.append((len(self.sent) + 1, text))


async def test_a_piece_that_arrives_while_nothing_is_sent_goes_out_alone_at_once():
    send = Recorder()
    outbox = Outbox(send, limit=10)
    for word in ["a", "b", "c"]:
        await outbox.put("delta", word)
        await asyncio.sleep(0)  # one turn of the loop: the sender runs, no timer is involved
        await asyncio.sleep(0)
    assert send.sent == [(1, "a"), (2, "b"), (3, "c")]
    await outbox.close()


async def test_pieces_that_arrive_during_a_send_leave_together_with_the_next_seq():
    send = Recorder()
    send.gate.clear()
    outbox = Outbox(send, limit=10)
    await outbox.put("delta", "first")
    await send.sending.wait()
    for word in [" second", " third", " fourth"]:
        await outbox.put("delta", word)
    send.gate.set()
    await outbox.close()
    assert send.sent == [(1, "first"), (2, " second third fourth")]


async def test_put_waits_when_the_buffer_is_full_and_resumes_when_it_drains():
    send = Recorder()
    send.gate.clear()
    outbox = Outbox(send, limit=2)
    await outbox.put("delta", "a")
    await send.sending.wait()
    await outbox.put("delta", "b")
    await outbox.put("delta", "c")
    blocked = asyncio.create_task(outbox.put("delta", "d"))
    await asyncio.sleep(0)
    assert not blocked.done()
    send.gate.set()
    await blocked
    await outbox.close()
    assert "".join(text for _, text in send.sent) == "abcd"
    assert [seq for seq, _ in send.sent] == list(range(1, len(send.sent) + 1))


async def test_close_sends_what_waits_even_when_called_mid_send():
    send = Recorder()
    send.gate.clear()
    outbox = Outbox(send, limit=10)
    await outbox.put("delta", "a")
    await send.sending.wait()
    await outbox.put("delta", "b")
    closing = asyncio.create_task(outbox.close())
    await asyncio.sleep(0)
    send.gate.set()
    await closing
    assert send.sent == [(1, "a"), (2, "b")]


async def test_a_failed_send_surfaces_on_the_next_put():
    async def broken(kind: str, text: str, extra: object, mark: object) -> None:
        raise ConnectionError("layer down")

    outbox = Outbox(broken, limit=10)
    await outbox.put("delta", "a")
    await asyncio.sleep(0)
    try:
        await outbox.put("delta", "b")
    except ConnectionError:
        pass
    else:
        raise AssertionError("the failure was swallowed")


async def test_what_queues_up_leaves_in_deltas_no_longer_than_the_bound_of_whole_parts_and_nothing_is_lost():
    send = Recorder()
    send.gate.clear()
    outbox = Outbox(send, limit=100, max_chars=10)
    await outbox.put("delta", "first")
    await send.sending.wait()  # the first send is in flight; what follows queues up behind it
    for piece in ["abcd", "efghijklmnopqrstuvw", "xyz"]:
        await outbox.put("delta", piece)
    send.gate.set()

    await outbox.close()
    # Parts are merged whole; only the one over the bound by itself is cut.
    assert send.sent == [(1, "first"), (2, "abcd"), (3, "efghijklmn"), (4, "opqrstuvw"), (5, "xyz")]


async def test_only_text_of_one_kind_and_one_call_is_merged_and_every_part_keeps_its_place():
    send = Recorder()
    send.gate.clear()
    outbox = Outbox(send, limit=100)
    await outbox.put("reasoning", "first")
    await send.sending.wait()
    await outbox.put("reasoning", " thought")
    await outbox.put("reasoning", " more")
    await outbox.put("delta", "Answer")
    await outbox.put("tool_call", extra="opened a")
    await outbox.put("tool_arguments", '{"q":', "a")
    await outbox.put("tool_arguments", '{"r":', "b")
    await outbox.put("tool_arguments", ' "x"}', "a")
    await outbox.put("delta", " goes")
    await outbox.put("delta", " on")
    send.gate.set()
    await outbox.close()

    assert send.parts == [
        ("reasoning", "first", None),
        ("reasoning", " thought more", None),
        ("delta", "Answer", None),
        ("tool_call", "", "opened a"),
        ("tool_arguments", '{"q":', "a"),
        ("tool_arguments", '{"r":', "b"),
        ("tool_arguments", ' "x"}', "a"),
        ("delta", " goes on", None),
    ]


async def test_a_merged_part_carries_the_mark_of_the_last_part_in_it_and_a_cut_one_only_at_its_end():
    send = Recorder()
    send.gate.clear()
    outbox = Outbox(send, limit=100, max_chars=10)
    await outbox.put("delta", "first", mark=1)
    await send.sending.wait()
    await outbox.put("delta", "ab", mark=2)
    await outbox.put("delta", "cd", mark=3)
    await outbox.put("tool_running", extra="a")  # no mark: not something the model wrote
    await outbox.put("delta", "0123456789xyz", mark=4)
    send.gate.set()
    await outbox.close()

    assert [part[1] for part in send.parts] == ["first", "abcd", "", "0123456789", "xyz"]
    assert send.marks == [1, 3, None, None, 4]
