"""The protocol module on its own: parsing limits, and frames shaped as docs/protocol.md says."""

from __future__ import annotations

import json
import typing
import uuid
from pathlib import Path

import pytest

from streaming import errors, protocol
from streaming.errors import UpstreamStreamError
from streaming.provider.upstream import Piece, read_chunk
from streaming.relay import tool_outcome as outcome

LIMITS = protocol.Limits(
    models=("small", "large"), max_prompt_chars=100, max_tokens=500, max_streams=2, max_frame_bytes=1000
)


def test_a_full_prompt_is_parsed_with_defaults_for_what_is_left_out():
    conversation = uuid.uuid4()
    full = protocol.parse_client_frame(
        json.dumps(
            {
                "type": "prompt",
                "request": "r",
                "content": "hi",
                "conversation": str(conversation),
                "model": "large",
                "system": "terse",
                "temperature": 1,
                "max_tokens": 500,
                "future_field": "ignored",
            }
        ),
        LIMITS,
    )
    assert full == protocol.Prompt(
        request="r",
        content="hi",
        model="large",
        conversation=conversation,
        system="terse",
        temperature=1.0,
        max_tokens=500,
    )
    bare = protocol.parse_client_frame('{"type":"prompt","request":"r","content":"hi"}', LIMITS)
    assert bare.model == "small" and bare.parameters() == {}


def test_a_frame_over_the_byte_limit_is_refused_before_parsing():
    with pytest.raises(errors.BadRequest, match="larger than 1000 bytes"):
        protocol.parse_client_frame('{"type":"prompt","content":"' + "é" * 600 + '"}', LIMITS)


def test_the_request_id_of_an_invalid_frame_is_recovered_when_it_is_usable():
    assert protocol.request_id_of('{"request": "r-9", "type": 1}') == "r-9"
    assert protocol.request_id_of('{"request": 5}') is None
    assert protocol.request_id_of("[]") is None
    assert protocol.request_id_of("nope") is None


def test_an_unexpected_exception_becomes_an_internal_error_without_its_text():
    frame = protocol.error_frame(RuntimeError("password=hunter2"), request="r")
    assert frame == {
        "type": "error",
        "code": "internal_error",
        "message": errors.StreamingError.default_message,
        "retryable": True,
        "request": "r",
    }


def test_error_codes_are_stable_and_documented():
    documented = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    for error in [errors.StreamingError, *errors.StreamingError.__subclasses__()]:
        assert f"| `{error.code}` |" in documented


def test_tool_error_codes_are_documented():
    documented = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    for code in outcome.MESSAGES:
        assert f"| `{code}` |" in documented


def test_every_frame_the_server_sends_is_documented():
    documented = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    frames = [value for name, value in vars(protocol).items() if name.endswith("Frame") and typing.is_typeddict(value)]
    types = {typing.get_args(typing.get_type_hints(frame)["type"])[0] for frame in frames}
    assert {"ready", "start", "delta", "busy", "done", "error"} <= types
    for frame_type in types:
        assert f"### `{frame_type}`" in documented


def chunk(**fields):
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [], **fields}


def test_chunks_become_pieces():
    role = chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    text = chunk(choices=[{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}])
    finish = chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "length"}])
    usage = chunk(usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4})
    assert read_chunk(role) == Piece()
    assert read_chunk(text) == Piece(text="Hi")
    assert read_chunk(finish) == Piece(finish_reason="length")
    assert read_chunk(usage) == Piece(usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4})


def test_an_error_event_mid_answer_is_an_upstream_error():
    with pytest.raises(UpstreamStreamError):
        read_chunk({"error": {"message": "overloaded", "type": "server_error"}})
    assert errors.from_upstream(UpstreamStreamError({})).code == "upstream_error"
