"""What a worker leaves behind so that another one can go on with its answer (`STREAMING_TAKEOVER`).

On the Responses API with `background=True`, the provider goes on generating after the connection that asked has
closed, and any client may re-attach to the response's events from a sequence number. So a stream need not end with
the worker that started it: while it runs, the worker keeps beside the stream's record (see `shared`)
- a `Plan` at the start of each round: who asked, what the model was sent, where in the record the round began;
- the id of the round's response, once the provider names it, and the place of each tool call in its output;
- with every frame that carries what the model wrote, the sequence number of the last event in it (`after`), in the
  same Redis pipeline as the frame: what the record holds and where to re-attach can never disagree.

The worker that takes the stream over reads these and the record back (`Handover`), and `resume_of` says how it goes
on: re-attach to the response after `after`, with what the round had said and called so far, or not at all when a
tool was running that may not run twice. Pure: no I/O, no Django.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from streaming.clients import Client
from streaming.protocol import Usage
from streaming.relay.tool_calls import MadeCall, calls_in


@dataclass
class Plan:
    """How one round of a stream was asked, as a worker that takes the stream over needs it again."""

    client: Client
    model: str
    temperature: float | None
    max_tokens: int | None
    tools: list[str]  # the names of the tools offered
    round: int
    pos: int  # the last place in the stream's record before this round's frames
    messages: list[dict[str, Any]]
    usage: Usage | None = None  # of the rounds before this one

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes | str) -> Plan:
        fields = orjson.loads(raw)
        return cls(**{**fields, "client": Client(**fields["client"])})


@dataclass
class Handover:
    """What a stream's worker left for another: the present round's plan, its response, how far it was relayed."""

    plan: Plan
    response: str | None = None
    after: int | None = None  # the sequence number of the last event whose content is in the record
    call_indexes: dict[str, int] = field(default_factory=dict)  # each call's place in the response's output
    reasoning_field: str = ""

    @classmethod
    def of_fields(cls, fields: dict[str, str]) -> Handover | None:
        """From the stored fields (see `fields_of_*`); None without a plan (the stream never began a round)."""
        if "plan" not in fields:
            return None
        after = fields.get("after")
        return cls(
            plan=Plan.decode(fields["plan"]),
            response=fields.get("response") or None,
            after=int(after) if after else None,  # "" while the round has relayed nothing
            call_indexes={
                name.removeprefix("index:"): int(value) for name, value in fields.items() if name.startswith("index:")
            },
            reasoning_field=fields.get("reasoning_field", ""),
        )


def fields_of(handover: Handover) -> dict[str, str | bytes]:
    """The stored fields that `Handover.of_fields` reads back as `handover`."""
    fields: dict[str, str | bytes] = {
        **fields_of_plan(handover.plan),
        "response": handover.response or "",
        "after": "" if handover.after is None else str(handover.after),
        **{f"index:{call}": str(index) for call, index in handover.call_indexes.items()},
    }
    if handover.reasoning_field:
        fields["reasoning_field"] = handover.reasoning_field
    return fields


def fields_of_plan(plan: Plan) -> dict[str, str | bytes]:
    """A new round: its plan, and nothing yet of its response (the fields of the last round's are cleared)."""
    return {"plan": plan.encode(), "response": "", "after": ""}


@dataclass
class Resume:
    """How a taken-over stream goes on: in round `round`, re-attached to `response` after event `after` (or asking
    again, when the round's response was never named), with what the round had written and called so far."""

    round: int
    response: str | None
    after: int
    texts: list[str]  # this round's answer text, as relayed
    calls: list[MadeCall]  # every call of the stream so far, with the outcome of those that ran
    round_calls: dict[int, MadeCall]  # this round's calls, by their place in the response's output


class CannotResume(Exception):
    """The stream cannot go on elsewhere; its message says why (the stream ends `interrupted`). `response` is the
    provider's response it was reading, if any, which is then cancelled: no one will read the rest."""

    def __init__(self, message: str, *, response: str | None = None) -> None:
        super().__init__(message)
        self.response = response


def resume_of(handover: Handover, frames: list[dict[str, Any]], *, idempotent: Collection[str]) -> Resume:
    """How to go on with a stream from its handover and the frames of its record (decoded, end excluded).

    Raises `CannotResume` when a call was running that may not run again: a tool's effects would happen twice,
    unless it is declared idempotent (`@tool(idempotent=True)`).
    """
    plan, response = handover.plan, handover.response
    if len(frames) < plan.pos or (handover.after is not None and len(frames) == plan.pos):
        raise CannotResume("The record has lost frames the handover says were relayed.", response=response)
    calls = calls_in(frames)
    round_calls = [made for made in calls if made.round == plan.round]
    if response is None and round_calls:
        raise CannotResume("The round's calls were made, but not where the model wrote them.")
    for made in round_calls:
        if made.running and made.outcome is None and made.call.name not in idempotent:
            message = f"The tool {made.call.name!r} was running, and running it again could repeat it."
            raise CannotResume(message, response=response)
    by_index: dict[int, MadeCall] = {}
    for made in round_calls:
        index = handover.call_indexes.get(made.call.id)
        if index is None:
            raise CannotResume("A call's place in the model's output was not kept.", response=response)
        made.call.given_id = True  # the Responses API names every call
        by_index[index] = made
    texts = [frame["text"] for frame in frames[plan.pos :] if frame["type"] == "delta"]
    return Resume(
        round=plan.round,
        response=handover.response,
        after=handover.after if handover.after is not None else -1,
        texts=texts,
        calls=calls,
        round_calls=by_index,
    )
