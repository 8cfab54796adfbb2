"""Tool calls as a model writes them: fragments of streamed chunks, assembled into whole calls.

OpenAI-compatible servers send a call in fragments keyed by `index`: the first carries the call's `id` and function
name, the later ones pieces of its JSON arguments, and several calls of one response may interleave. Ollama sends
each call whole in one chunk, and older versions of it give every call index 0; so a fragment that brings a new `id`
to an index already in use starts a new call. A call whose provider gave no id gets one, since the `tool` message
that answers it must name it.

Pure: `CallAssembler.add` turns each fragment into what to relay at once (the call's name as soon as it is known,
its arguments as they come); `calls` is what the model asked for when the response ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streaming.relay.tool_outcome import Outcome


@dataclass(frozen=True, slots=True)
class CallFragment:
    """One `delta.tool_calls[]` item of a chunk."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


# DeepSeek refuses a conversation whose assistant messages with tool calls lack the reasoning that led to them, in
# the field it came in; servers that send reasoning in another field are not sent it back.
ECHOED_REASONING_FIELD = "reasoning_content"
# The Responses API's reasoning items of a round, sent back before its calls (see `provider.responses.input_of`).
ECHOED_ITEMS = "echoed_items"
MAX_ID_CHARS = 100  # the log's column
MAX_NAME_CHARS = 64  # the longest function name OpenAI accepts; a longer one names no tool, and is cut


@dataclass
class Call:
    """A call as the model wrote it: untrusted, its arguments perhaps not even JSON (see `tools.run_call`)."""

    id: str
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    opened: bool = False  # its name was relayed
    given_id: bool = False  # the provider named it (else the id is ours)

    @property
    def arguments_text(self) -> str:
        return "".join(self.arguments)


@dataclass(frozen=True, slots=True)
class Opened:
    """Relay a call: its name is known."""

    call: str
    name: str


@dataclass(frozen=True, slots=True)
class Arguments:
    """Relay a piece of a call's arguments."""

    call: str
    text: str


class CallAssembler:
    """Assembles the calls of one response. Ids are unique within it (a repeated or overlong id is replaced), since
    each call's result goes back to the model under its id."""

    def __init__(self, *, id_prefix: str) -> None:
        self._id_prefix = id_prefix
        self._at: dict[int, Call] = {}  # the call being written at each index
        self.calls: list[Call] = []  # in the order they began

    def add(self, fragment: CallFragment) -> list[Opened | Arguments]:
        call = self._at.get(fragment.index)
        if call is None or self._starts_another(call, fragment):
            call = self._begin(fragment)
        if fragment.name and not call.name:
            call.name = fragment.name[:MAX_NAME_CHARS]
        events: list[Opened | Arguments] = []
        if call.name and not call.opened:
            call.opened = True
            events.append(Opened(call.id, call.name))
            if call.arguments:  # arguments that came before the name
                events.append(Arguments(call.id, call.arguments_text))
        if fragment.arguments:
            call.arguments.append(fragment.arguments)
            if call.opened:
                events.append(Arguments(call.id, fragment.arguments))
        return events

    def resume(self, index: int, call: Call) -> None:
        """Go on assembling a call begun before a take-over (see `handover`), at its place in the output."""
        self._at[index] = call
        self.calls.append(call)

    @staticmethod
    def _starts_another(call: Call, fragment: CallFragment) -> bool:
        """A second call at the same index: a different id from the provider, or, without ids, another name (OpenAI
        sends a call's name once; Ollama sends each call whole, older versions all at index 0)."""
        if fragment.id:
            return call.given_id and fragment.id != call.id
        return bool(fragment.name and call.name and fragment.name[:MAX_NAME_CHARS] != call.name)

    def _begin(self, fragment: CallFragment) -> Call:
        taken = {call.id for call in self.calls}
        given = fragment.id if fragment.id and len(fragment.id) <= MAX_ID_CHARS and fragment.id not in taken else None
        call = Call(id=given or f"{self._id_prefix}{len(self.calls) + 1}", given_id=given is not None)
        self._at[fragment.index] = call
        self.calls.append(call)
        return call


@dataclass
class MadeCall:
    """A call the model made in round `round`, and how it went (`outcome`), as the log keeps it: a call with no
    outcome when its stream ended never finished. The offsets are how much answer and reasoning came before its
    round."""

    call: Call
    round: int
    answer_offset: int
    reasoning_offset: int
    outcome: Outcome | None = None
    running: bool = False  # its `tool_running` frame was sent


@dataclass(frozen=True, slots=True)
class Answered:
    """A call as the model is told of it in later requests: what it asked, and what it got back."""

    id: str
    name: str
    arguments: str
    result: str


def round_messages(
    *, text: str, calls: list[Answered], reasoning: str | None = None, items: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The messages that tell the model of one round of its tool calls, as the API expects them: its assistant
    message (its text, `reasoning_content` where DeepSeek requires it, the calls) and one `tool` message per call.

    Arguments that are not a JSON object (cut off, or not JSON at all) go back as `{}`: Ollama and vLLM refuse a
    history with arguments they cannot parse, and the call's result already says what was wrong with them.
    """
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _object_or_empty(c.arguments)}}
            for c in calls
        ],
    }
    if reasoning:
        message[ECHOED_REASONING_FIELD] = reasoning
    if items:
        message[ECHOED_ITEMS] = items
    return [message, *({"role": "tool", "tool_call_id": c.id, "content": c.result} for c in calls)]


def _object_or_empty(arguments: str) -> str:
    try:
        return arguments if isinstance(orjson.loads(arguments), dict) else "{}"
    except orjson.JSONDecodeError:
        return "{}"


def calls_in(frames: Iterable[dict[str, Any]]) -> list[MadeCall]:
    """The calls that a stream's frames show, and how far each got: for the log of a stream whose worker died, which
    has only its record."""
    made: dict[str, MadeCall] = {}
    answer = reasoning = 0
    round, ran = 1, False
    for frame in frames:
        kind = frame["type"]
        if kind == "delta":
            answer += len(frame["text"])
        elif kind == "reasoning":
            reasoning += len(frame["text"])
        elif kind == "tool_call":
            if ran:  # the first call after a round's calls ran begins the next round
                round, ran = round + 1, False
            call = Call(id=frame["call"], name=frame["name"], opened=True)
            made[call.id] = MadeCall(call, round, answer, reasoning)
        elif (one := made.get(frame.get("call", ""))) is not None:
            if kind == "tool_arguments":
                one.call.arguments.append(frame["text"])
            elif kind == "tool_running":
                ran, one.answer_offset, one.reasoning_offset = True, answer, reasoning
                one.running = True
            elif kind == "tool_result":
                error = frame["error"] or {}
                one.outcome = Outcome(
                    frame["status"], frame["result"], error.get("code"), error.get("message"), frame["duration_ms"]
                )
    return list(made.values())
