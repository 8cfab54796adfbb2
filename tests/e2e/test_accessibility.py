"""The page checked by axe-core (the npm package the frontend installs), at desktop size and on a phone with touch.

axe runs inside the page, injected from `frontend/node_modules/axe-core/axe.min.js`, on the page as a person sees it
after an answer with a Thinking section, a tool card (its result open) and a code block, and again while "Jump to
latest" shows. No serious or critical violation may be left. The controls are found by the names a person would say.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat import ANSWER_TIMEOUT_MS, open_chat
from tests.e2e.chat import send_with_button as send
from tests.live import ROOT

pytestmark = pytest.mark.e2e

AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}


def blocking_violations(page: Page) -> list[str]:
    """axe's serious and critical violations of the whole page, one line each with the elements they are on."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text())
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + json.dumps([[node["target"], node["failureSummary"]] for node in violation["nodes"]])
        for violation in results["violations"]
        if violation["impact"] in BLOCKING
    ]


def test_axe_finds_nothing_serious_on_an_answer_with_thinking_a_tool_card_and_code(device_page: Page) -> None:
    page = device_page
    assert AXE.exists(), "axe-core is not installed: cd frontend && npm ci"
    open_chat(page)
    assert blocking_violations(page) == []

    send(page, "What time is it?")
    reply = page.get_by_role("article", name="Answer").first
    expect(reply).to_have_attribute("data-status", "completed", timeout=ANSWER_TIMEOUT_MS)
    card = reply.get_by_role("group", name="Tool call current_time")
    card.get_by_role("button", name="Result").click()
    expect(card.get_by_role("group", name="Result")).to_be_visible()
    send(page, "How do I use a real model instead?")
    second = page.get_by_role("article", name="Answer").nth(1)
    expect(second).to_have_attribute("data-status", "completed", timeout=ANSWER_TIMEOUT_MS)
    expect(second.get_by_role("group", name="Code, bash")).to_be_visible()
    expect(second.get_by_role("button", name="Copy code")).to_be_visible()
    assert blocking_violations(page) == []

    # Scrolled up, "Jump to latest" shows; it and the page stay clean, and it takes the person back down.
    conversation = page.get_by_role("region", name="Conversation")
    conversation.evaluate("(element) => element.scrollBy(0, -400)")
    jump = page.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_visible()
    assert blocking_violations(page) == []
    jump.click()
    expect(jump).to_be_hidden()


def test_the_conversation_can_be_reached_and_scrolled_with_the_keyboard(device_page: Page) -> None:
    page = device_page
    open_chat(page)
    send(page, "How does this chat stream its answers?")
    expect(page.get_by_role("article", name="Answer").first).to_have_attribute(
        "data-status", "completed", timeout=ANSWER_TIMEOUT_MS
    )
    conversation = page.get_by_role("region", name="Conversation")
    conversation.focus()
    expect(conversation).to_be_focused()
    scrollable = conversation.evaluate("(element) => element.scrollHeight > element.clientHeight")
    if scrollable:
        before = conversation.evaluate("(element) => element.scrollTop")
        page.keyboard.press("Home")
        page.wait_for_function(
            "(before) => document.querySelector('[aria-label=\"Conversation\"]').scrollTop < before", arg=before
        )
