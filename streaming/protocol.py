"""The WebSocket protocol of docs/protocol.md: one typed shape per frame, and functions to parse and build them.

Pure: no sockets, no database, no settings. The consumer hands `parse_client_frame` the text it received and the
limits in force; everything that leaves the server is built by one of the `*_frame` functions here, so the document
and the code can be read side by side.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

import orjson

from streaming.errors import BadRequest, NotAllowed, OverLimit, StreamingError

PROTOCOL_VERSION = 2
MAX_REQUEST_ID_CHARS = 64


@dataclass(frozen=True)
class Limits:
    """What a client may ask for; announced in `ready` and enforced by `parse_client_frame`."""

    models: tuple[str, ...]
    max_prompt_chars: int
    max_tokens: int
    max_streams: int
    max_frame_bytes: int
    # The deployment sets the system instruction (`STREAMING_SYSTEM_INSTRUCTION`): a client's own is refused.
    system_pinned: bool = False
    # Models that are sent no temperature, as they refuse one (reasoning models on the Responses API): a client's
    # is accepted, and not used with them.
    own_temperature: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, int]:
        return {
            "max_prompt_chars": self.max_prompt_chars,
            "max_tokens": self.max_tokens,
            "max_streams": self.max_streams,
            "max_frame_bytes": self.max_frame_bytes,
        }


# --- Client to server ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """A validated `prompt` frame; optional fields are None when the client left them out."""

    request: str
    content: str
    model: str
    conversation: uuid.UUID | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    # Where the new exchange goes in the conversation's tree; at most one is given (`services.exchanges_start`).
    regenerate: uuid.UUID | None = None
    edit: uuid.UUID | None = None
    parent: uuid.UUID | None = None

    def parameters(self) -> dict[str, Any]:
        """The generation parameters the client chose, as stored with the exchange."""
        chosen = {"system": self.system, "temperature": self.temperature, "max_tokens": self.max_tokens}
        return {name: value for name, value in chosen.items() if value is not None}

    def settings(self) -> dict[str, Any]:
        """What a new conversation remembers of its first prompt: the model and the parameters chosen."""
        return {"model": self.model, **self.parameters()}


@dataclass(frozen=True)
class Cancel:
    """A validated `cancel` frame."""

    stream: uuid.UUID


@dataclass(frozen=True)
class Resume:
    """A validated `resume` frame: replay what follows delta `after` (or, given `pos`, the frame at that place of
    the stream's record), then carry on live."""

    stream: uuid.UUID
    after: int
    pos: int | None = None


ClientFrame = Prompt | Cancel | Resume


def parse_client_frame(text: str, limits: Limits) -> ClientFrame:
    """Turn a received text frame into a `Prompt`, `Cancel` or `Resume`, or raise `BadRequest`/`NotAllowed`.

    Fields the protocol does not define are ignored, so that newer clients can talk to older servers.
    """
    if len(text.encode()) > limits.max_frame_bytes:
        raise BadRequest(f"The message is larger than {limits.max_frame_bytes} bytes.")
    try:
        frame = json.loads(text)
    except ValueError:
        raise BadRequest("The message is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise BadRequest("The message must be a JSON object.")
    kind = frame.get("type")
    if kind == "prompt":
        prompt = _parse_prompt(frame, limits)
        if prompt.system is not None and limits.system_pinned:
            raise NotAllowed(SYSTEM_PINNED)
        return prompt
    if kind == "cancel":
        return Cancel(stream=_require_uuid(frame, "stream"))
    if kind == "resume":
        after = _optional_whole_number(frame, "after", low=0, high=2**31)
        pos = _optional_whole_number(frame, "pos", low=0, high=2**31)
        return Resume(stream=_require_uuid(frame, "stream"), after=after or 0, pos=pos)
    raise BadRequest(f"Unknown message type {kind!r}." if isinstance(kind, str) else "The message has no type.")


def request_id_of(text: str) -> str | None:
    """The `request` of a frame that failed validation, if it had a usable one, so its error can name it."""
    try:
        request = json.loads(text).get("request")
    except (ValueError, AttributeError):
        return None
    return request if isinstance(request, str) and 0 < len(request) <= MAX_REQUEST_ID_CHARS else None


PLACEMENT_FIELDS = ("regenerate", "edit", "parent")


def _parse_prompt(frame: dict[str, Any], limits: Limits) -> Prompt:
    request = _require_str(frame, "request", max_chars=MAX_REQUEST_ID_CHARS)
    placement = _parse_placement(frame)
    # A regenerated answer answers the question it replaces: the server takes that question from the log.
    content = "" if placement.get("regenerate") else _require_str(frame, "content", max_chars=limits.max_prompt_chars)
    if not content.strip() and not placement.get("regenerate"):
        raise BadRequest("The prompt is empty.")
    model = frame.get("model", limits.models[0])
    if not isinstance(model, str) or model not in limits.models:
        raise NotAllowed(f"The model must be one of: {', '.join(limits.models)}.")
    conversation = _require_uuid(frame, "conversation") if frame.get("conversation") is not None else None
    system = _require_str(frame, "system", max_chars=limits.max_prompt_chars) if "system" in frame else None
    return Prompt(
        request=request,
        content=content,
        model=model,
        conversation=conversation,
        system=system or None,
        temperature=_optional_number(frame, "temperature", low=0.0, high=2.0),
        max_tokens=_optional_whole_number(frame, "max_tokens", low=1, high=limits.max_tokens),
        **placement,
    )


def _parse_placement(frame: dict[str, Any]) -> dict[str, uuid.UUID]:
    """`regenerate`, `edit` or `parent`: at most one, and only with the `conversation` the exchange it names is in."""
    given = [field for field in PLACEMENT_FIELDS if frame.get(field) is not None]
    if len(given) > 1:
        raise BadRequest(f"Send at most one of {', '.join(repr(field) for field in PLACEMENT_FIELDS)}.")
    if given and frame.get("conversation") is None:
        raise BadRequest(f"'{given[0]}' needs the 'conversation' it is in.")
    return {field: _require_uuid(frame, field) for field in given}


SYSTEM_PINNED = "This server sets the system instruction itself; send none."
SETTINGS_FIELDS = ("model", "system", "temperature", "max_tokens")


def parse_settings(value: object, limits: Limits) -> dict[str, Any]:
    """A conversation's settings as a client sends them, checked by the rules of the `prompt` frame's fields of the
    same names, so that what a conversation remembers is always something a prompt could have carried.

    Returns only the fields chosen, in the shape `Prompt.settings()` gives a new conversation: a field left out or
    null, and an empty `system`, mean the default. Raises `BadRequest` for anything but an object of known fields
    within bounds (an unknown field is named, not ignored: a misspelt one would otherwise be silently lost), and
    `NotAllowed` for a model outside `limits.models` or a system instruction while the server pins its own.
    """
    if not isinstance(value, dict):
        raise BadRequest("'settings' must be a JSON object.")
    if unknown := sorted(set(value) - set(SETTINGS_FIELDS)):
        raise BadRequest(f"Unknown settings: {', '.join(map(repr, unknown))}; known: {', '.join(SETTINGS_FIELDS)}.")
    model = value.get("model")
    if model is not None and (not isinstance(model, str) or model not in limits.models):
        raise NotAllowed(f"The model must be one of: {', '.join(limits.models)}.")
    system = value.get("system")
    if system is not None and system != "":
        system = _require_str(value, "system", max_chars=limits.max_prompt_chars)
        if limits.system_pinned:
            raise NotAllowed(SYSTEM_PINNED)
    chosen = {
        "model": model,
        "system": system or None,
        "temperature": _optional_number(value, "temperature", low=0.0, high=2.0),
        "max_tokens": _optional_whole_number(value, "max_tokens", low=1, high=limits.max_tokens),
    }
    return {name: setting for name, setting in chosen.items() if setting is not None}


def _require_str(frame: dict[str, Any], field: str, *, max_chars: int) -> str:
    value = frame.get(field)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{field}' must be a non-empty string.")
    if len(value) > max_chars:
        raise BadRequest(f"'{field}' is longer than {max_chars} characters.")
    return value


def _require_uuid(frame: dict[str, Any], field: str) -> uuid.UUID:
    value = frame.get(field)
    invalid = BadRequest(f"'{field}' must be an id as sent by the server.")
    if not isinstance(value, str):
        raise invalid
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid from None


def _optional_number(frame: dict[str, Any], field: str, *, low: float, high: float) -> float | None:
    value = frame.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"'{field}' must be a number.")
    if not low <= value <= high:
        raise BadRequest(f"'{field}' must be between {low:g} and {high:g}.")
    return float(value)


def _optional_whole_number(frame: dict[str, Any], field: str, *, low: int, high: int) -> int | None:
    value = frame.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{field}' must be a whole number.")
    if not low <= value <= high:
        raise BadRequest(f"'{field}' must be between {low} and {high}.")
    return value


# --- Server to client ------------------------------------------------------------------------------------------------


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class OfferedTool(TypedDict):
    name: str
    description: str


class ReadyFrame(TypedDict):
    type: Literal["ready"]
    protocol: int
    model: str
    models: list[str]
    demo: bool
    limits: dict[str, int]
    tools: list[OfferedTool]
    system_pinned: bool
    own_temperature: list[str]


class StartFrame(TypedDict):
    type: Literal["start"]
    stream: str
    request: str
    conversation: str
    parent: str | None
    model: str
    demo: bool
    content: str


class DeltaFrame(TypedDict):
    type: Literal["delta"]
    stream: str
    pos: int
    seq: int
    text: str


class ReasoningFrame(TypedDict):
    type: Literal["reasoning"]
    stream: str
    pos: int
    text: str


class ToolCallFrame(TypedDict):
    type: Literal["tool_call"]
    stream: str
    pos: int
    call: str
    name: str


class ToolArgumentsFrame(TypedDict):
    type: Literal["tool_arguments"]
    stream: str
    pos: int
    call: str
    text: str


class ToolRunningFrame(TypedDict):
    type: Literal["tool_running"]
    stream: str
    pos: int
    call: str


class ToolError(TypedDict):
    code: str
    message: str


class ToolResultFrame(TypedDict):
    type: Literal["tool_result"]
    stream: str
    pos: int
    call: str
    status: Literal["done", "failed"]
    result: str | None
    error: ToolError | None
    duration_ms: int


class BusyFrame(TypedDict):
    type: Literal["busy"]
    stream: str
    lag_ms: int
    message: str


class DoneFrame(TypedDict):
    type: Literal["done"]
    stream: str
    seq: int
    finish_reason: str
    usage: Usage | None
    ttft_ms: int | None
    first_output_ms: int | None
    duration_ms: int


class ErrorFrame(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    retryable: bool
    retry_after_ms: NotRequired[int]
    stream: NotRequired[str]
    request: NotRequired[str]


def ready_frame(*, limits: Limits, demo: bool, tools: list[OfferedTool]) -> ReadyFrame:
    return {
        "type": "ready",
        "protocol": PROTOCOL_VERSION,
        "model": limits.models[0],
        "models": list(limits.models),
        "demo": demo,
        "limits": limits.as_dict(),
        "tools": tools,
        "system_pinned": limits.system_pinned,
        "own_temperature": list(limits.own_temperature),
    }


def start_frame(
    *, stream: uuid.UUID, prompt: Prompt, content: str, conversation: uuid.UUID, parent: uuid.UUID | None, demo: bool
) -> StartFrame:
    """`content` is the question the model answers: the prompt's, or for a regenerated answer the one it replaces."""
    return {
        "type": "start",
        "stream": str(stream),
        "request": prompt.request,
        "conversation": str(conversation),
        "parent": str(parent) if parent else None,
        "model": prompt.model,
        "demo": demo,
        "content": content,
    }


def delta_frame(*, stream: uuid.UUID | str, pos: int, seq: int, text: str) -> DeltaFrame:
    return {"type": "delta", "stream": str(stream), "pos": pos, "seq": seq, "text": text}


def reasoning_frame(*, stream: uuid.UUID | str, pos: int, text: str) -> ReasoningFrame:
    return {"type": "reasoning", "stream": str(stream), "pos": pos, "text": text}


def tool_call_frame(*, stream: uuid.UUID | str, pos: int, call: str, name: str) -> ToolCallFrame:
    return {"type": "tool_call", "stream": str(stream), "pos": pos, "call": call, "name": name}


def tool_arguments_frame(*, stream: uuid.UUID | str, pos: int, call: str, text: str) -> ToolArgumentsFrame:
    return {"type": "tool_arguments", "stream": str(stream), "pos": pos, "call": call, "text": text}


def tool_running_frame(*, stream: uuid.UUID | str, pos: int, call: str) -> ToolRunningFrame:
    return {"type": "tool_running", "stream": str(stream), "pos": pos, "call": call}


def tool_result_frame(
    *,
    stream: uuid.UUID | str,
    pos: int,
    call: str,
    result: str | None,
    error: ToolError | None,
    duration_ms: int,
) -> ToolResultFrame:
    return {
        "type": "tool_result",
        "stream": str(stream),
        "pos": pos,
        "call": call,
        "status": "failed" if error is not None else "done",
        "result": result,
        "error": error,
        "duration_ms": duration_ms,
    }


def busy_frame(*, stream: uuid.UUID | str, lag_ms: float) -> BusyFrame:
    return {
        "type": "busy",
        "stream": str(stream),
        "lag_ms": round(lag_ms),
        "message": "The server is overloaded, so this answer may arrive late.",
    }


def done_frame(
    *,
    stream: uuid.UUID | str,
    seq: int,
    finish_reason: str,
    usage: Usage | None,
    ttft_ms: int | None,
    first_output_ms: int | None,
    duration_ms: int,
) -> DoneFrame:
    return {
        "type": "done",
        "stream": str(stream),
        "seq": seq,
        "finish_reason": finish_reason,
        "usage": usage,
        "ttft_ms": ttft_ms,
        "first_output_ms": first_output_ms,
        "duration_ms": duration_ms,
    }


def error_frame(error: Exception, *, stream: uuid.UUID | str | None = None, request: str | None = None) -> ErrorFrame:
    """The one place an exception becomes what a client reads; anything unexpected becomes `internal_error`."""
    known = error if isinstance(error, StreamingError) else StreamingError()
    frame: ErrorFrame = {
        "type": "error",
        "code": known.code,
        "message": known.message,
        "retryable": known.retryable,
    }
    if isinstance(known, OverLimit):
        frame["retry_after_ms"] = known.retry_after_ms
    if stream is not None:
        frame["stream"] = str(stream)
    if request is not None:
        frame["request"] = request
    return frame


def encode(frame: dict[str, Any]) -> str:
    """Frames go out as compact UTF-8 JSON; built once per frame, however many sockets receive it."""
    return orjson.dumps(frame).decode()
