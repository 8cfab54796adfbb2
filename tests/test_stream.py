"""The streaming core over a real socket: frames, the log row, and who receives what."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from streaming.models import Conversation, Exchange
from tests.conftest import new_session, open_socket, prompt, texts
from tests.fake_openai import Script

pytestmark = pytest.mark.django_db(transaction=True)


async def exchange(stream: str) -> Exchange:
    return await Exchange.objects.aget(id=stream)


async def test_full_stream_frames_and_log_row(upstream):
    upstream.then(Script(tokens=["The", " sky", " is", " blue", "."]))
    socket = await open_socket(session_key=await database_sync_to_async(new_session)())
    await socket.send(prompt("Why is the sky blue?", request="q-1", temperature=0.5, max_tokens=50))

    frames = await socket.stream_to_end()

    start, *deltas, done = frames
    assert start["type"] == "start" and start["request"] == "q-1" and start["model"] == "fake-model"
    assert start["demo"] is False and start["content"] == "Why is the sky blue?"
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert texts(deltas) == "The sky is blue."
    assert done["type"] == "done" and done["finish_reason"] == "stop" and done["seq"] == len(deltas)
    assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    assert done["ttft_ms"] is not None and done["duration_ms"] >= done["ttft_ms"]

    row = await exchange(start["stream"])
    assert row.status == Exchange.Status.COMPLETED
    assert row.answer == "The sky is blue."
    assert row.finish_reason == "stop" and row.last_seq == len(deltas)
    assert (row.prompt_tokens, row.completion_tokens) == (5, 5)
    assert row.parameters == {"temperature": 0.5, "max_tokens": 50}
    assert row.model == "fake-model" and row.request == "q-1" and row.session_key
    assert row.ttft_ms == done["ttft_ms"] and row.duration_ms == done["duration_ms"]

    sent = upstream.requests[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0.5 and sent["max_tokens"] == 50
    assert sent["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]
    assert upstream.requests[0].headers["authorization"] == "Bearer sk-test-secret-key"
    await socket.close()
