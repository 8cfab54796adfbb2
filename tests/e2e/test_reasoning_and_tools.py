"""The demo model thinks, then calls the built-in `current_time` tool, then answers: the page shows each as it comes.

A Thinking section streams the reasoning while it is written and closes by itself (saying how long it took) once the
model goes on; a card for the tool call ends `done` with the tool's result behind a disclosure; the answer text
follows it. Both are found the way assistive technology finds them: by role and accessible name. A reload shows the
same parts again, from the conversation API. Every wait is on something the page shows; nothing sleeps.
"""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.chat import ANSWER_TIMEOUT_MS, open_chat, send

pytestmark = pytest.mark.e2e

PROMPT = "What time is it?"
THOUGHT = re.compile(r"^Thought for \d")
# From the API the thinking time is known only when the answer text followed the thinking directly (the server's
# `ttft_ms` - `first_output_ms`); before a tool call, the section is just "Reasoning".
THOUGHT_OR_REASONING = re.compile(r"^(Thought for \d|Reasoning$)")
CLOCK_TIME = re.compile(r"\d{1,2}:\d{2}")

# Runs before the page's own scripts: records each distinct state of the first answer's first Thinking section
# (its button's name and whether it is open, and the reasoning text shown), from the moment it is rendered, because
# the demo thinks only briefly: a poll could miss the whole thinking phase.
RECORD_THINKING = """(() => {
  window.__thinking = [];
  const record = () => {
    const section = document.querySelector('[data-testid="message-assistant"] [data-testid="thinking"]');
    if (!section) return;
    const button = section.querySelector('button');
    const seen = {
      label: button.textContent,
      expanded: button.getAttribute('aria-expanded'),
      text: section.querySelector('.thinking-text').textContent,
    };
    const last = window.__thinking[window.__thinking.length - 1];
    if (!last || last.label !== seen.label || last.expanded !== seen.expanded || last.text !== seen.text) {
      window.__thinking.push(seen);
    }
  };
  new MutationObserver(record).observe(document, {
    childList: true, subtree: true, characterData: true, attributes: true,
  });
})();"""

# True when the nodes come in this order in the page.
IN_DOCUMENT_ORDER = """(nodes) => nodes.every((node, index) =>
  index === 0 || Boolean(nodes[index - 1].compareDocumentPosition(node) & Node.DOCUMENT_POSITION_FOLLOWING))"""


def first_answer(page: Page) -> Locator:
    return page.get_by_test_id("message-assistant").first


def without_whitespace(text: str) -> str:
    """Reasoning text minus whitespace: paragraphs are split only once their blank line has arrived."""
    return re.sub(r"\s", "", text)


def expect_finished_parts(reply: Locator, thinking_name: re.Pattern[str]) -> None:
    """A finished answer: its first Thinking section closed, one current_time card done with a result that holds a
    clock time, and answer text after the card; thinking, card and text in that order."""
    thinking = reply.get_by_role("button", name=thinking_name).first
    expect(thinking).to_have_attribute("aria-expanded", "false")
    card = reply.get_by_role("group", name="Tool call current_time")
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-status", "done")
    expect(card.get_by_test_id("tool-status")).to_contain_text("done")
    result = card.get_by_role("button", name="Result")
    expect(result).to_have_attribute("aria-expanded", "false")
    result.click()
    expect(result).to_have_attribute("aria-expanded", "true")
    expect(card.get_by_test_id("tool-result")).to_contain_text(CLOCK_TIME)

    answer_text = reply.get_by_test_id("answer-text").last
    expect(answer_text).not_to_be_empty()
    in_order = [thinking.element_handle(), card.element_handle(), answer_text.element_handle()]
    assert reply.page.evaluate(IN_DOCUMENT_ORDER, in_order), "thinking, tool card and answer are out of order"


def test_thinking_streams_then_closes_and_the_time_tool_runs_before_the_answer(page: Page) -> None:
    page.add_init_script(RECORD_THINKING)
    open_chat(page)
    send(page, PROMPT)
    reply = first_answer(page)
    expect(reply).to_have_attribute("data-status", "completed", timeout=ANSWER_TIMEOUT_MS)

    seen: list[dict[str, str]] = page.evaluate("window.__thinking")
    while_thinking = [state for state in seen if state["label"] == "Thinking"]
    assert while_thinking, f"no Thinking section was shown while the model thought: {seen}"
    assert all(state["expanded"] == "true" for state in while_thinking), f"it was not open while thinking: {seen}"
    texts = [state["text"] for state in while_thinking if state["text"]]
    assert len(set(texts)) >= 2, f"the reasoning did not stream, it appeared as {texts}"
    for earlier, later in pairwise(texts):
        grew = without_whitespace(later).startswith(without_whitespace(earlier))
        assert grew, f"the reasoning did not just grow:\n{earlier!r}\nthen\n{later!r}"
    assert THOUGHT.match(seen[-1]["label"]), f"the section does not say how long it thought: {seen[-1]}"
    assert seen[-1]["expanded"] == "false", f"the section did not close when the model went on: {seen[-1]}"

    expect_finished_parts(reply, THOUGHT)
    stats = reply.get_by_test_id("answer-stats")
    expect(stats).to_contain_text("to first output")
    expect(stats).to_contain_text("to first token")

    # The person can open the thinking again, and read it as it was written.
    thinking = reply.get_by_role("button", name=THOUGHT).first
    thinking.click()
    expect(thinking).to_have_attribute("aria-expanded", "true")
    expect(reply.get_by_role("group", name=THOUGHT).first).to_contain_text(texts[-1].strip()[:40])


def test_a_reload_shows_the_thinking_and_the_tool_call_again(page: Page) -> None:
    open_chat(page)
    send(page, PROMPT)
    expect(first_answer(page)).to_have_attribute("data-status", "completed", timeout=ANSWER_TIMEOUT_MS)
    answer_before = " ".join(first_answer(page).get_by_test_id("answer-text").all_text_contents()).strip()

    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_text("connected")
    reply = first_answer(page)
    expect(reply).to_have_attribute("data-status", "completed")
    expect_finished_parts(reply, THOUGHT_OR_REASONING)
    answer_after = " ".join(reply.get_by_test_id("answer-text").all_text_contents()).strip()
    assert answer_after == answer_before
