"""What one upstream chunk or event contributes to an answer, whichever API it came from (see `upstream`,
`responses`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streaming.protocol import Usage
from streaming.relay.tool_calls import CallFragment


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times as much, once per token
class Piece:
    """What one upstream chunk contributes: answer text, reasoning, tool-call fragments, the finish reason, usage,
    output items the provider wants back as they were in the next tool round (the Responses API's reasoning), and
    where in the provider's stream it came."""

    text: str = ""
    reasoning: str = ""
    reasoning_field: str = ""  # the delta field the reasoning came in
    calls: tuple[CallFragment, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    items: tuple[dict[str, Any], ...] = ()
    # The Responses API's: the event's sequence number (where a worker taking over re-attaches, see
    # `relay.handover`), and the response's id, on the first event that names it.
    at: int | None = None
    response: str = ""


def merge_text(pieces: list[Piece]) -> list[Piece]:
    """`pieces` with each run of plain answer text (text and nothing else) joined into one piece.

    A model sends one chunk per token, and one read of its response brings several while the worker runs late. The
    relay would put each through the same steps only to merge them again into one frame (see `relay.outbox`); joined
    here, those steps run once per read. Anything but plain text stays a piece of its own, in its place.
    """
    if len(pieces) < 2:
        return pieces
    merged: list[Piece] = []
    run: list[str] = []
    for piece in pieces:
        if _plain(piece):
            run.append(piece.text)
            continue
        if run:
            merged.append(Piece(text="".join(run)))
            run = []
        merged.append(piece)
    if run:
        merged.append(Piece(text="".join(run)))
    return merged


def _plain(piece: Piece) -> bool:
    return (
        bool(piece.text)
        and not (piece.reasoning or piece.calls or piece.finish_reason or piece.usage or piece.items or piece.response)
        and piece.at is None
    )
