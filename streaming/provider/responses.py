"""OpenAI's Responses API (`STREAMING_OPENAI_API = "responses"`): the request made from the relay's chat messages, and
its stream of typed events reduced to the same `Piece`s a chat-completions chunk gives, so that nothing past
`upstream.stream_pieces` knows which API answered.

Why a second API: OpenAI's reasoning models show what they think (reasoning summaries) only here; Chat Completions
streams none of it. Each request is stateless (`store=False`): the conversation goes as input, built from the same
messages a chat request sends, so a conversation can move between the two APIs, and nothing of it stays with the
provider. (With `STREAMING_TAKEOVER`, `upstream` asks for a stored background response instead, which another worker
can re-attach to; the input is the same.) Pure: no I/O, no Django.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streaming.errors import UpstreamStreamError
from streaming.protocol import Usage
from streaming.provider.pieces import Piece
from streaming.relay.tool_calls import ECHOED_ITEMS, CallFragment

SUMMARY_FIELD = "reasoning_summary"  # what the log records as the reasoning's field (`Exchange.reasoning_field`)
TEXT_FIELD = "reasoning_text"  # raw reasoning, which open-weight models served this way stream instead

# `response.incomplete`'s reasons, as the chat-completions `finish_reason` the relay and the protocol speak; any
# other reason is passed on by its own name.
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def request_body(
    *,
    messages: Iterable[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    tool_choice: str | None,
    temperature: float | None,
    max_tokens: int | None,
    reasoning: bool,
) -> dict[str, Any]:
    """The JSON of a streamed `POST /responses` for the relay's chat messages and chat-completions tools.

    `reasoning` asks a reasoning model for its summaries; such models refuse `temperature`, which is then not sent.
    """
    instructions, items = input_of(messages)
    body: dict[str, Any] = {"input": items, "store": False, "stream_options": {"include_obfuscation": False}}
    if instructions:
        body["instructions"] = instructions
    if max_tokens is not None:
        body["max_output_tokens"] = max_tokens
    if reasoning:
        body["reasoning"] = {"summary": "auto"}
        # Not stored, a reasoning item comes back to the next tool round only as its encrypted content.
        body["include"] = ["reasoning.encrypted_content"]
    elif temperature is not None:
        body["temperature"] = temperature
    if tools:
        body["tools"] = [_tool_of(tool) for tool in tools]
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    return body


def input_of(messages: Iterable[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The instructions (the system message) and the input items for chat messages: questions and answers as
    messages, each tool call as a `function_call` item and its result as a `function_call_output`."""
    instructions: str | None = None
    items: list[dict[str, Any]] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "system":
            instructions = content
        elif role == "tool":
            items.append({"type": "function_call_output", "call_id": message["tool_call_id"], "output": content})
        else:
            items.extend(message.get(ECHOED_ITEMS) or ())  # the round's reasoning, before what it led to
            if content:
                items.append({"role": role, "content": content})
            for call in message.get("tool_calls") or ():
                function = call["function"]
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": function["name"],
                        "arguments": function["arguments"],
                    }
                )
    return instructions, items


def _tool_of(tool: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions tool (`{"type": "function", "function": {...}}`) as the Responses API takes it (flat)."""
    return {"type": "function", **tool["function"]}


class EventReader:
    """Reduces the events of one streamed response, in order, to `Piece`s (None for an event that carries nothing
    the relay relays).

    Raises `UpstreamStreamError` for `response.failed` and `error`.
    """

    def __init__(self) -> None:
        self._called = False  # the response made function calls: it finishes as `tool_calls`
        self._named = False  # the response's id was read

    def read(self, event: dict[str, Any]) -> Piece | None:
        piece = self._read(event)
        if piece is not None:
            piece.at = event.get("sequence_number")
        return piece

    def _read(self, event: dict[str, Any]) -> Piece | None:
        kind = event.get("type")
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            return Piece(text=event.get("delta") or "")
        if kind == "response.reasoning_summary_text.delta":
            return Piece(reasoning=event.get("delta") or "", reasoning_field=SUMMARY_FIELD)
        if kind == "response.reasoning_summary_part.added" and event.get("summary_index"):
            return Piece(reasoning="\n\n", reasoning_field=SUMMARY_FIELD)  # the summary's next paragraph
        if kind == "response.reasoning_text.delta":
            return Piece(reasoning=event.get("delta") or "", reasoning_field=TEXT_FIELD)
        if kind == "response.output_item.added":
            return self._item_added(event)
        if kind == "response.function_call_arguments.delta":
            return Piece(calls=(CallFragment(index=event.get("output_index", 0), arguments=event.get("delta") or ""),))
        if kind in ("response.completed", "response.incomplete"):
            return self._finished(event.get("response") or {})
        if kind in ("response.created", "response.queued", "response.in_progress") and not self._named:
            self._named = True
            return Piece(response=(event.get("response") or {}).get("id") or "")
        if kind == "response.failed":
            raise UpstreamStreamError((event.get("response") or {}).get("error") or {"message": "The model failed."})
        if kind == "error":
            raise UpstreamStreamError({"code": event.get("code"), "message": event.get("message")})
        return None  # queued, created, in progress, the parts and items opening and closing

    def _item_added(self, event: dict[str, Any]) -> Piece | None:
        item = event.get("item") or {}
        if item.get("type") != "function_call":
            return None
        self._called = True
        fragment = CallFragment(
            index=event.get("output_index", 0),
            id=item.get("call_id") or None,
            name=item.get("name") or None,
            arguments=item.get("arguments") or "",
        )
        return Piece(calls=(fragment,))

    def _finished(self, response: dict[str, Any]) -> Piece:
        output = [item for item in response.get("output") or () if isinstance(item, dict)]
        if response.get("status") == "incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason") or "incomplete"
            finish_reason = INCOMPLETE_REASONS.get(reason, reason)
        else:
            called = self._called or any(item.get("type") == "function_call" for item in output)
            finish_reason = "tool_calls" if called else "stop"
        # The reasoning items, which the model needs again in the next tool round, are taken from the whole response
        # and not from their own events: a worker that took the stream over may have re-attached after those.
        reasoning = tuple(item for item in output if item.get("type") == "reasoning")
        return Piece(finish_reason=finish_reason, usage=_usage_of(response.get("usage")), items=reasoning)


def _usage_of(raw: dict[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    prompt, completion = raw.get("input_tokens") or 0, raw.get("output_tokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": raw.get("total_tokens") or 0}
