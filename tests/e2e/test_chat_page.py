"""The chat page in a real browser, against a real server answering with the demo model.

Every wait is on something the page shows (Playwright's `expect` polls the DOM); nothing sleeps, and nothing
asserts how long anything took.
"""

from __future__ import annotations

import re
import struct
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat import answer, answer_text, conversation_id, open_chat, send, wait_until_completed
from tests.e2e.conftest import without_markup
from tests.live import ROOT

pytestmark = pytest.mark.e2e

# A demo answer is about 190 tokens at 40 tokens a second; this leaves room for a slow machine.
ARTIFACTS = ROOT / "test-artifacts"
XSS_PROMPT = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

# Records every distinct text of the (first) answer, as the browser renders it, from before the prompt is sent.
RECORD_ANSWER_SNAPSHOTS = """() => {
  window.__snapshots = [];
  const record = () => {
    const answer = document.querySelector('[data-testid="answer-text"]');
    if (!answer) return;
    const text = answer.textContent;
    const snapshots = window.__snapshots;
    if (snapshots.length === 0 ? text !== '' : snapshots[snapshots.length - 1] !== text) snapshots.push(text);
  };
  new MutationObserver(record).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def token_counts(stats: str) -> tuple[int, int]:
    """(completion, total) from the stats line, e.g. `... · 195 / 212 tokens · ...`."""
    match = re.search(r"(\d+) / (\d+) tokens", stats)
    assert match, f"no token counts in the stats: {stats!r}"
    return int(match[1]), int(match[2])


def test_page_loads_in_demo_mode_and_connects(page: Page) -> None:
    open_chat(page)
    expect(page.get_by_test_id("demo-badge")).to_be_visible()
    expect(page.get_by_test_id("demo-badge")).to_have_text("Demo model")
    expect(page.get_by_test_id("composer")).to_be_editable()
    expect(page.get_by_test_id("error")).to_have_count(0)


def test_answer_streams_in_growing_pieces_until_completed(page: Page) -> None:
    open_chat(page)
    page.evaluate(RECORD_ANSWER_SNAPSHOTS)

    send(page, "Why is the sky blue?")
    expect(answer(page, 0)).to_have_attribute("data-status", "streaming")
    wait_until_completed(page, 0)

    final = answer_text(page, 0).text_content() or ""
    snapshots: list[str] = page.evaluate("window.__snapshots")
    assert final.startswith('You asked: "Why is the sky blue?"')
    distinct = {without_markup(snapshot) for snapshot in snapshots}
    assert len(distinct) >= 5, f"the answer appeared in {len(distinct)} pieces, not streamed: {snapshots}"
    for earlier, later in pairwise(snapshots):
        assert without_markup(later).startswith(without_markup(earlier)), (
            f"the answer's text did not just grow:\n{earlier!r}\nthen\n{later!r}"
        )
    assert snapshots[-1] == final
    assert int(answer(page, 0).get_attribute("data-seq") or 0) >= 5
    expect(answer(page, 0).get_by_test_id("answer-stats")).to_be_visible()
    expect(answer(page, 0).get_by_test_id("answer-stats")).to_contain_text("tokens")
    expect(page.get_by_test_id("stop")).to_have_count(0)


def test_stop_keeps_the_partial_answer_and_halts_it(page: Page) -> None:
    prompt = "Tell me a long story."
    open_chat(page)
    send(page, prompt)
    expect(answer_text(page, 0)).to_contain_text('You asked: "')
    expect(answer(page, 0)).to_have_attribute("data-status", "streaming")

    page.get_by_test_id("stop").click()
    expect(answer(page, 0)).to_have_attribute("data-status", "cancelled")
    expect(answer(page, 0).get_by_test_id("answer-note")).to_have_text("stopped")
    expect(page.get_by_test_id("stop")).to_have_count(0)
    partial = answer_text(page, 0).text_content() or ""
    seq_at_cancel = answer(page, 0).get_attribute("data-seq")
    assert partial.startswith('You asked: "')

    # A later event: the same prompt again, answered in full in the same conversation.
    send(page, prompt)
    wait_until_completed(page, 1)
    full = answer_text(page, 1).text_content() or ""
    assert len(partial) < len(full), f"the stopped answer is not partial:\n{partial!r}\nfull:\n{full!r}"
    expect(answer(page, 0)).to_have_attribute("data-status", "cancelled")
    expect(answer(page, 0)).to_have_attribute("data-seq", seq_at_cancel or "")
    assert answer_text(page, 0).text_content() == partial, "the stopped answer kept growing"


def test_second_turn_continues_the_conversation_and_survives_a_reload(page: Page) -> None:
    first, second = "What is a WebSocket?", "And how is it different from SSE?"
    open_chat(page)
    send(page, first)
    wait_until_completed(page, 0)
    conversation = conversation_id(page)
    address = page.url
    items = page.get_by_test_id("conversation-item")
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("href", f"#{conversation}")

    send(page, second)
    wait_until_completed(page, 1)
    assert page.url == address, "the second prompt left the conversation"
    expect(page.get_by_test_id("message-user")).to_have_text([first, second])
    expect(answer_text(page, 1)).to_contain_text(f'You asked: "{second}"')
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("aria-current", "page")
    # The model saw the first turn: the second prompt cost more tokens than the whole first answer.
    first_completion, _ = token_counts(answer(page, 0).get_by_test_id("answer-stats").text_content() or "")
    second_completion, second_total = token_counts(answer(page, 1).get_by_test_id("answer-stats").text_content() or "")
    assert second_total - second_completion > first_completion

    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_text("connected")
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("href", f"#{conversation}")
    expect(items.first).to_contain_text(first)
    expect(page.get_by_test_id("message-user")).to_have_text([first, second])

    # Away to a new chat and back through the sidebar.
    page.get_by_test_id("new-chat").click()
    expect(page.get_by_test_id("message-user")).to_have_count(0)
    items.first.click()
    expect(page).to_have_url(address)
    expect(page.get_by_test_id("message-user")).to_have_text([first, second])
    expect(page.get_by_test_id("message-assistant")).to_have_count(2)
    for index, prompt in enumerate([first, second]):
        expect(answer(page, index)).to_have_attribute("data-status", "completed")
        expect(answer_text(page, index)).to_contain_text(f'You asked: "{prompt}"')
        expect(answer(page, index).get_by_test_id("answer-stats")).to_be_visible()


def test_html_in_a_prompt_and_its_echo_renders_as_text(page: Page) -> None:
    open_chat(page)
    send(page, XSS_PROMPT)
    wait_until_completed(page, 0)

    expect(page.get_by_test_id("message-user")).to_have_text(XSS_PROMPT)
    expect(answer_text(page, 0)).to_contain_text(f'You asked: "{XSS_PROMPT}"')
    expect(answer_text(page, 0).get_by_text("<img src=x", exact=False)).to_be_visible()
    assert page.evaluate("typeof window.__xss") == "undefined", "a script from the prompt ran"
    expect(answer_text(page, 0).locator('img[src="x"]')).to_have_count(0)
    expect(answer_text(page, 0).locator("script")).to_have_count(0)
    expect(page.locator('img[src="x"]')).to_have_count(0)


def test_screenshot_of_a_finished_chat(page: Page) -> None:
    open_chat(page)
    send(page, "How does this chat stream its answers?")
    wait_until_completed(page, 0)
    send(page, "How do I use a real model instead?")
    wait_until_completed(page, 1)
    code = answer(page, 1).locator(".code-block code")
    expect(code).to_contain_text("export OPENAI_API_KEY")
    expect(code.locator(".hljs-built_in")).to_have_text("export")  # highlighted once the answer is complete
    expect(page.get_by_test_id("conversation-item")).to_have_count(1)
    expect(page.get_by_test_id("conversation-item")).to_contain_text("How does this chat stream")

    # Start the view at the second question, so the picture shows a question and its answer together.
    question = page.get_by_test_id("message-user").nth(1)
    question.evaluate("(element) => element.scrollIntoView({block: 'start', behavior: 'instant'})")

    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "chat.png"
    path.unlink(missing_ok=True)
    page.screenshot(path=path, animations="disabled", caret="hide")
    assert png_size(path) == (1280, 800)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height
