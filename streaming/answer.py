"""The answer as a fold over the model's pieces: what is saved is what was streamed, by construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from streaming.protocol import Usage
from streaming.upstream import Piece


@dataclass
class Answer:
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None

    def add(self, piece: Piece) -> None:
        if piece.text:
            self.parts.append(piece.text)
        if piece.finish_reason:
            self.finish_reason = piece.finish_reason
        if piece.usage:
            self.usage = piece.usage

    @property
    def text(self) -> str:
        return "".join(self.parts)
