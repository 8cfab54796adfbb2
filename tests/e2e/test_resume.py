"""A reload in the middle of an answer: the page shows the text it had and the answer goes on from there.

The page keeps a running answer's text and last seq in sessionStorage; after the reload it shows that text again and
sends `resume` with `after` = that seq, and the server replays the rest. Every wait is on something the page shows
or sends; nothing sleeps.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.e2e.conftest import without_markup

pytestmark = pytest.mark.e2e

# About 220 tokens at 40 a second: some five seconds of answer, so a reload lands well before its end.
ANSWER_TIMEOUT_MS = 30_000
PROMPT = "Why does the sky look blue at noon but red and orange at sunset, and what does the air have to do with it?"
STREAMS_KEY = "streaming-chat.streams"

# Runs before the page's own scripts on every load: records each distinct (text, status, seq) of the first answer,
# from the moment it is first rendered, so the test sees what the page showed right after the reload.
RECORD_FIRST_ANSWER = """(() => {
  window.__answers = [];
  const record = () => {
    const message = document.querySelector('[data-testid="message-assistant"]');
    if (!message) return;
    const text = message.querySelector('[data-testid="answer-text"]')?.textContent ?? '';
    const seen = { text, status: message.dataset.status, seq: Number(message.dataset.seq) };
    const last = window.__answers[window.__answers.length - 1];
    if (!last || last.text !== seen.text || last.status !== seen.status) window.__answers.push(seen);
  };
  new MutationObserver(record).observe(document, {
    childList: true, subtree: true, characterData: true, attributes: true,
  });
})();"""


def markdown_as_text(markdown: str) -> str:
    """The demo answer's markdown as its rendered text would read through `without_markup`: no code fences and no
    list markers (the only other markdown it uses)."""
    lines = [line for line in markdown.splitlines() if not line.startswith("```")]
    return without_markup("\n".join(re.sub(r"^- ", "", line) for line in lines))


def record_resumes(page: Page) -> list[dict[str, Any]]:
    """Every `resume` frame the page sends from now on, on any of its sockets."""
    resumes: list[dict[str, Any]] = []

    def watch(socket: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("type") == "resume":
                resumes.append(frame)

        socket.on("framesent", sent)

    page.on("websocket", watch)
    return resumes


def test_reload_mid_stream_shows_the_text_so_far_and_continues_it(page: Page) -> None:
    page.add_init_script(RECORD_FIRST_ANSWER)
    resumes = record_resumes(page)
    page.goto("/")
    expect(page.get_by_test_id("connection-status")).to_have_text("connected")
    composer = page.get_by_test_id("composer")
    composer.fill(PROMPT)
    composer.press("Enter")

    message = page.get_by_test_id("message-assistant").first
    text = message.get_by_test_id("answer-text")
    expect(text).to_contain_text(f'You asked: "{PROMPT}"')
    expect(message).to_have_attribute("data-status", "streaming")
    before = text.text_content() or ""
    seq_before = int(message.get_attribute("data-seq") or 0)
    stream = message.get_attribute("data-stream")
    conversation = page.evaluate("window.location.hash").removeprefix("#")
    assert before and seq_before > 0 and stream and conversation

    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_text("connected")
    page.wait_for_function("window.__answers.length > 0")
    first = page.evaluate("window.__answers[0]")
    assert first["status"] == "streaming", f"the answer had ended before the page showed it again: {first}"
    assert first["text"], "after the reload the answer started again from nothing"
    assert without_markup(first["text"]).startswith(without_markup(before)), (
        f"the text shown right after the reload does not continue the text before it:\n{before!r}\nthen\n{first!r}"
    )
    assert first["seq"] >= seq_before

    expect(message).to_have_attribute("data-status", "completed", timeout=ANSWER_TIMEOUT_MS)
    final = text.text_content() or ""
    seen: list[dict[str, Any]] = page.evaluate("window.__answers")
    for earlier, later in itertools.pairwise(seen):
        assert without_markup(later["text"]).startswith(without_markup(earlier["text"])), (
            f"the answer did not just grow after the reload:\n{earlier!r}\nthen\n{later!r}"
        )
    # It resumed once, from the place it had restored (protocol 2: `pos`, with `after` for older servers), and not
    # from the start.
    [resume] = resumes
    assert resume.keys() == {"type", "stream", "after", "pos"}
    assert (resume["type"], resume["stream"], resume["after"]) == ("resume", stream, first["seq"])
    assert resume["pos"] >= resume["after"] > 0

    saved = page.evaluate(
        "async (id) => (await (await fetch(`/api/conversations/${id}/`, {credentials: 'same-origin'})).json())",
        conversation,
    )
    [exchange] = saved["exchanges"]
    assert exchange["stream"] == stream and exchange["status"] == "completed"
    expect(message).to_have_attribute("data-seq", str(exchange["last_seq"]))
    assert without_markup(final) == markdown_as_text(exchange["answer"]), (
        f"the answer shown is not the one saved:\n{final!r}\nsaved:\n{exchange['answer']!r}"
    )
    assert page.evaluate(f"sessionStorage.getItem('{STREAMS_KEY}')") is None, "the ended stream is still kept"

    # The saved answer, rendered by the same page, reads exactly as the streamed one did.
    page.reload()
    expect(message).to_have_attribute("data-status", "completed")
    expect(text).to_have_text(final)
