"""What a person does on the chat page, for the browser tests: open it, send a prompt, find and await an answer."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

# How long a demo answer may take to stream to its end on a busy machine.
ANSWER_TIMEOUT_MS = 30_000
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def open_chat(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_test_id("connection-status")).to_have_text("connected")


def send(page: Page, prompt: str) -> None:
    """Types a prompt and presses Enter, the way a person sends one."""
    composer = page.get_by_test_id("composer")
    composer.fill(prompt)
    expect(page.get_by_test_id("send")).to_be_enabled()
    composer.press("Enter")
    expect(composer).to_have_value("")


def send_with_button(page: Page, prompt: str) -> None:
    """Types a prompt and presses Send, found by its role and name (as on a phone)."""
    composer = page.get_by_role("textbox", name="Message")
    composer.fill(prompt)
    page.get_by_role("button", name="Send").click()
    expect(composer).to_have_value("")


def answer(page: Page, index: int) -> Locator:
    return page.get_by_test_id("message-assistant").nth(index)


def answer_text(page: Page, index: int) -> Locator:
    return answer(page, index).get_by_test_id("answer-text")


def wait_until_completed(page: Page, index: int, timeout: float = ANSWER_TIMEOUT_MS) -> None:
    expect(answer(page, index)).to_have_attribute("data-status", "completed", timeout=timeout)


def conversation_id(page: Page) -> str:
    """The open conversation, from the address (`/#<uuid>`)."""
    fragment = page.evaluate("window.location.hash").removeprefix("#")
    assert UUID.match(fragment), f"no conversation id in the address: {page.url}"
    return fragment
