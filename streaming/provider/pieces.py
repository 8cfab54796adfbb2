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
