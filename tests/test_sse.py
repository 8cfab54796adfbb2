"""Splitting server-sent events into `data:` payloads, however the bytes are cut."""

from __future__ import annotations

import pytest

from streaming.provider.sse import DataLines

STREAM = b'data: {"a":1}\n\n: a comment\r\nevent: message\r\ndata:{"b":"\xc3\xa9"}\r\n\r\ndata: [DONE]\n\n'


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_payloads_come_out_whole_and_in_order_however_the_stream_is_cut(size):
    lines = DataLines()
    payloads = []
    for start in range(0, len(STREAM), size):
        payloads += lines.feed(STREAM[start : start + size])
    assert payloads == [b'{"a":1}', b'{"b":"\xc3\xa9"}', b"[DONE]"]


def test_a_line_cut_off_by_the_end_of_the_stream_is_not_a_payload():
    lines = DataLines()
    assert lines.feed(b'data: {"a":1}\ndata: {"b"') == [b'{"a":1}']
