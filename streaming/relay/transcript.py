"""The log's copy of a stream's record: what was relayed, by kind, and in what order.

The log keeps the answer and the reasoning as plain text (readable in the admin, searchable) and, in `layout`, one
small item per frame of the stream's record, so that an ended stream replays frame for frame, with the same `pos`
and `seq`, as it was sent live:
- a whole number: a `delta` whose text ends there in the answer;
- `["r", end]`: a `reasoning` frame whose text ends there in the reasoning;
- `["f", frame]`: any other frame (tool calls: few and small), as it was sent.

Pure: the generation adds each frame as it sends it; a sweep that finds a stream's worker dead rebuilds the
transcript from the stream's record.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson

from streaming import protocol

LayoutItem = int | list[Any]


class Transcript:
    def __init__(self) -> None:
        self.deltas: list[str] = []
        self.reasonings: list[str] = []
        self.layout: list[LayoutItem] = []
        self._answer_chars = 0
        self._reasoning_chars = 0

    @classmethod
    def of_frames(cls, frames: Iterable[str]) -> Transcript:
        """The transcript of a stream's record, end frame excluded."""
        transcript = cls()
        for frame in frames:
            decoded = orjson.loads(frame)
            transcript.add(decoded["type"], frame, decoded.get("text", ""))
        return transcript

    def add(self, kind: str, frame: str, text: str = "") -> None:
        if kind == "delta":
            self.deltas.append(text)
            self._answer_chars += len(text)
            self.layout.append(self._answer_chars)
        elif kind == "reasoning":
            self.reasonings.append(text)
            self._reasoning_chars += len(text)
            self.layout.append(["r", self._reasoning_chars])
        else:
            self.layout.append(["f", frame])

    @property
    def answer(self) -> str:
        return "".join(self.deltas)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasonings)


def replay(stream: uuid.UUID | str, *, answer: str, reasoning: str, layout: list[LayoutItem]) -> list[str]:
    """The frames of an ended stream, from the log, exactly as they were sent (end frame excluded)."""
    frames: list[str] = []
    answer_at = reasoning_at = seq = 0
    for pos, item in enumerate(layout, start=1):
        if isinstance(item, int):
            seq += 1
            text, answer_at = answer[answer_at:item], item
            frames.append(protocol.encode(protocol.delta_frame(stream=stream, pos=pos, seq=seq, text=text)))
        elif item[0] == "r":
            text, reasoning_at = reasoning[reasoning_at : item[1]], item[1]
            frames.append(protocol.encode(protocol.reasoning_frame(stream=stream, pos=pos, text=text)))
        else:
            frames.append(item[1])
    return frames


def place_after_delta(layout: list[LayoutItem], seq: int) -> int | None:
    """The place in the layout of delta `seq` (0 for before the first frame), or None if there is no such delta."""
    if seq == 0:
        return 0
    count = 0
    for pos, item in enumerate(layout, start=1):
        if isinstance(item, int):
            count += 1
            if count == seq:
                return pos
    return None
