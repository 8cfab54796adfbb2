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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the assembly of calls does not depend on how they run
    from streaming.tools.outcome import Outcome


@dataclass(frozen=True, slots=True)
class CallFragment:
    """One `delta.tool_calls[]` item of a chunk."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class Call:
    id: str
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    opened: bool = False  # its name was relayed

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
    def __init__(self, *, id_prefix: str) -> None:
        self._id_prefix = id_prefix
        self._at: dict[int, Call] = {}  # the call being written at each index
        self.calls: list[Call] = []  # in the order they began

    def add(self, fragment: CallFragment) -> list[Opened | Arguments]:
        call = self._at.get(fragment.index)
        if call is None or (fragment.id and fragment.id != call.id and call.opened):
            call = Call(id=fragment.id or f"{self._id_prefix}{len(self.calls) + 1}")
            self._at[fragment.index] = call
            self.calls.append(call)
        if fragment.name and not call.name:
            call.name = fragment.name
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
