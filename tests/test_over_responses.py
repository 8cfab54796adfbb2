"""The protocol's tests run again with the relay asking the model through the Responses API: whichever API answers,
a client sees the same frames in the same order, and the log keeps the same rows.

The tests of tool calls and of each server's reasoning shape (`test_reasoning_and_tools`) are not repeated: they
check the chat-completions chunks and requests of each server themselves. `test_responses_api` checks what the
Responses API has of its own: its request, its reasoning summaries, a tool-call round, incomplete and failed ends.
"""

from __future__ import annotations

import pytest

from tests import test_model_output, test_resume, test_stream

pytestmark = pytest.mark.django_db(transaction=True)

# They check the chat-completions request itself (`messages`, `stream_options`); `test_responses_api` checks the
# Responses request.
CHAT_REQUEST_TESTS = {"test_full_stream_frames_and_log_row", "test_a_conversation_sends_its_earlier_turns_upstream"}


@pytest.fixture
def upstream(upstream, settings):
    """The fake provider, asked through its Responses stream (`POST /v1/responses`)."""
    settings.STREAMING_OPENAI_API = "responses"
    return upstream


for module in (test_stream, test_resume, test_model_output):
    for name, value in vars(module).items():
        if name.startswith("test_") and name not in CHAT_REQUEST_TESTS:
            globals()[name] = value
