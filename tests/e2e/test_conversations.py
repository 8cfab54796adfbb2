"""Managing conversations from the sidebar in a real browser: rename, search and delete, against a real server."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_chat_page import conversation_id, open_chat, send, wait_until_completed

pytestmark = pytest.mark.e2e


def test_rename_search_and_delete_from_the_sidebar(page: Page) -> None:
    open_chat(page)
    send(page, "Tell me about herons")
    wait_until_completed(page, 0)
    first = conversation_id(page)
    page.get_by_test_id("new-chat").click()
    send(page, "What do owls eat?")
    wait_until_completed(page, 0)
    second = conversation_id(page)
    sidebar = page.get_by_role("navigation", name="Conversations")
    entries = sidebar.get_by_test_id("conversation-entry")
    expect(entries).to_have_count(2)

    # Rename the older one in place: Escape leaves it as it was, Enter saves, and a reload shows the new title.
    herons = sidebar.locator(f'[data-conversation="{first}"]')
    herons.get_by_role("button", name="Rename").click()
    title = herons.get_by_role("textbox", name="New title")
    title.fill("Scrapped")
    title.press("Escape")
    expect(herons.get_by_test_id("conversation-item")).to_contain_text("Tell me about herons")
    herons.get_by_role("button", name="Rename").click()
    herons.get_by_role("textbox", name="New title").fill("Birds that fish")
    herons.get_by_role("textbox", name="New title").press("Enter")
    expect(herons.get_by_test_id("conversation-item")).to_contain_text("Birds that fish")
    page.reload()
    expect(sidebar.locator(f'[data-conversation="{first}"]')).to_contain_text("Birds that fish")

    # Search: by the new title, by what was said (with a snippet), and nothing.
    box = sidebar.get_by_role("searchbox", name="Search conversations")
    box.fill("fish")
    expect(sidebar.get_by_test_id("conversation-item")).to_have_count(1)
    expect(sidebar.get_by_test_id("conversation-item")).to_have_attribute("href", f"#{first}")
    box.fill("owls")
    expect(sidebar.get_by_test_id("conversation-item")).to_have_attribute("href", f"#{second}")
    expect(sidebar.get_by_test_id("conversation-snippet")).to_contain_text("owls")
    box.fill("zebras in tuxedos")
    expect(sidebar.get_by_test_id("search-status")).to_have_text("No results")
    expect(sidebar.get_by_test_id("conversation-item")).to_have_count(0)
    box.fill("")
    expect(entries).to_have_count(2)

    # Delete the open conversation, after the confirm step: it closes and is gone from the list and the search.
    assert conversation_id(page) == second
    owls = sidebar.locator(f'[data-conversation="{second}"]')
    owls.get_by_role("button", name="Delete").click()
    owls.get_by_role("group").get_by_role("button", name="Cancel").click()
    expect(entries).to_have_count(2)
    owls.get_by_role("button", name="Delete").click()
    owls.get_by_role("group").get_by_role("button", name="Delete").click()
    expect(entries).to_have_count(1)
    expect(page.get_by_test_id("message-assistant")).to_have_count(0)
    assert page.evaluate("window.location.hash") == ""
    box.fill("owls")
    expect(sidebar.get_by_test_id("search-status")).to_have_text("No results")
    page.goto(f"/#{second}")
    expect(page.get_by_test_id("error")).to_contain_text("does not exist any more")
