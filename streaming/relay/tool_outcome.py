"""How one tool call ended: the value its `tool_result` frame, its log row and the model's `tool` message are made of.

Pure: no settings, no I/O. The error codes are those of docs/protocol.md; each has the fixed message the model and
the page see, so that no exception's own text ever reaches either (only a tool's `ToolError` speaks for itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

DONE = "done"
FAILED = "failed"

TOOL_FAILED = "tool_failed"
TOOL_TIMEOUT = "tool_timeout"
TOOL_NOT_OFFERED = "tool_not_offered"
INVALID_ARGUMENTS = "invalid_arguments"
TOO_MANY_CALLS = "too_many_calls"

MESSAGES = {
    TOOL_FAILED: "The tool failed.",
    TOOL_TIMEOUT: "The tool took too long.",
    TOOL_NOT_OFFERED: "There is no tool of that name here.",
    INVALID_ARGUMENTS: "The arguments do not fit the tool's parameters.",
    TOO_MANY_CALLS: "Too many tool calls at once: this one was not run.",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """A call's end: `done` with its `result` text, or `failed` with an error code and message."""

    status: Literal["done", "failed"]
    result: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    duration_ms: int = 0

    @classmethod
    def failure(cls, code: str, message: str | None = None, *, duration_ms: int = 0) -> Outcome:
        """A failed call; without `message`, the code's fixed one (e.g. `Outcome.failure(TOO_MANY_CALLS)`)."""
        return cls(FAILED, error_code=code, error_message=message or MESSAGES[code], duration_ms=duration_ms)

    @property
    def error(self) -> dict[str, str] | None:
        """The `error` of a `tool_result` frame: `{"code", "message"}`, or None for a call that is done."""
        if self.status == DONE:
            return None
        return {"code": self.error_code or TOOL_FAILED, "message": self.error_message or MESSAGES[TOOL_FAILED]}

    def for_model(self) -> str:
        """The content of the `tool` message the model reads: the result, or `{"error": message}`."""
        if self.status == DONE:
            return self.result or ""
        return json.dumps({"error": self.error_message or MESSAGES[TOOL_FAILED]}, ensure_ascii=False)


# What the model is told of a call that has no outcome (every call has one once its round is done; the log's calls
# of an answer that was stopped mid-call do not).
STOPPED = Outcome.failure(TOOL_FAILED, "The answer was stopped before this call finished.")
