"""The `data:` payloads of a server-sent event stream, split straight from the bytes as they arrive.

The SDK's own line reader passes every read through several layers of async generators and text decoding before a
line comes out; at one upstream chunk per read that costs more than parsing the chunk (docs/performance.md). The model
API sends one JSON document per `data:` line, with `\\n` or `\\r\\n` line ends, so splitting on `\\n` is enough. A line
cut off by the end of the stream is dropped, as the SSE format says of an event that was not finished.
"""

from __future__ import annotations


class DataLines:
    """Feed it bytes in any pieces; it returns the payload of each complete `data:` line, in order."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self._partial + data).split(b"\n") if self._partial else data.split(b"\n")
        self._partial = lines.pop()
        return [line[5:].strip() for line in lines if line.startswith(b"data:")]
