"""Feedback on an answer in a real browser: a thumbs down with a comment on a demo answer is saved, survives a
reload, and is what the conversation API gives back."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat import answer, conversation_id, open_chat, send, wait_until_completed
from tests.e2e.test_accessibility import blocking_violations

pytestmark = pytest.mark.e2e


def test_a_thumbs_down_with_a_comment_is_kept_across_a_reload(page: Page) -> None:
    open_chat(page)
    send(page, "Why is the sky blue?")
    wait_until_completed(page, 0)
    reply = answer(page, 0)
    good, bad = reply.get_by_role("button", name="Good answer"), reply.get_by_role("button", name="Bad answer")
    expect(good).to_have_attribute("aria-pressed", "false")
    expect(bad).to_have_attribute("aria-pressed", "false")

    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    comment = reply.get_by_role("textbox", name="What was wrong with it? (optional)")
    expect(comment).to_be_focused()
    assert blocking_violations(page) == []
    comment.fill("It never said <b>why</b> sunsets are red.")
    reply.get_by_role("button", name="Save comment").click()
    expect(comment).to_have_count(0)
    expect(reply.get_by_role("button", name="Edit comment")).to_be_visible()

    page.reload()
    wait_until_completed(page, 0)
    reply = answer(page, 0)
    expect(reply.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "true")
    expect(reply.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "false")
    reply.get_by_role("button", name="Edit comment").click()
    expect(reply.get_by_role("textbox", name="What was wrong with it? (optional)")).to_have_value(
        "It never said <b>why</b> sunsets are red."
    )

    detail = page.request.get(f"/api/conversations/{conversation_id(page)}/").json()
    assert detail["exchanges"][0]["feedback"] == {
        "rating": "down",
        "comment": "It never said <b>why</b> sunsets are red.",
    }

    # Pressing the pressed thumb again takes the feedback back, for good.
    reply.get_by_role("button", name="Bad answer").click()
    expect(reply.get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "false")
    page.reload()
    wait_until_completed(page, 0)
    expect(answer(page, 0).get_by_role("button", name="Bad answer")).to_have_attribute("aria-pressed", "false")
    assert page.request.get(f"/api/conversations/{conversation_id(page)}/").json()["exchanges"][0]["feedback"] is None
