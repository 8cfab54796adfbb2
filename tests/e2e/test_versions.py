"""Versions in a real browser: Regenerate, Edit and the switch between versions, with a second tab of the same
person following along, and a conversation deleted while its answer streams.

The model is the fake provider (`tests.fake_openai`) behind a real daphne, so each test reads what the model was
asked: a regenerated answer is asked the question once and without the answer it replaces, and after an edit the
model is sent only the path the page shows.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat import answer, answer_text, conversation_id, open_chat, send, wait_until_completed
from tests.e2e.conftest import scripted_daphne
from tests.e2e.test_accessibility import blocking_violations
from tests.fake_openai import Script
from tests.live import Daphne, FakeOpenAIThread

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAIThread) -> Iterator[Daphne]:
    """Replaces conftest's server: the fake provider answers."""
    with scripted_daphne(tmp_path_factory, "versions", upstream) as daphne:
        yield daphne


@pytest.fixture(autouse=True)
def model(upstream: FakeOpenAIThread) -> FakeOpenAIThread:
    upstream.reset()
    return upstream


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def said(page: Page, index: int):
    return page.get_by_test_id("message-user").nth(index)


def two_turns(page: Page, model: FakeOpenAIThread) -> None:
    model.then(Script(tokens=["First", " answer."]), Script(tokens=["Second", " answer."]))
    open_chat(page)
    send(page, "First question")
    wait_until_completed(page, 0)
    send(page, "Second question")
    wait_until_completed(page, 1)


def second_tab(page: Page) -> Page:
    """Another tab of the same browser: the same session, so the same person."""
    other = page.context.new_page()
    other.goto(f"/#{conversation_id(page)}")
    expect(other.get_by_test_id("connection-status")).to_have_text("connected")
    expect(other.get_by_test_id("message-assistant")).to_have_count(2)
    return other


def test_regenerate_shows_the_new_answer_in_place_and_the_switch_goes_back(page: Page, model: FakeOpenAIThread):
    two_turns(page, model)
    other = second_tab(page)
    model.then(Script(tokens=["A", " better", " answer."]))

    answer(page, 1).get_by_role("button", name="Regenerate").click()

    wait_until_completed(page, 1)
    expect(answer_text(page, 1)).to_have_text("A better answer.")
    assert model.asked()[-1] == [user("First question"), assistant("First answer."), user("Second question")]
    for tab in (page, other):
        expect(tab.get_by_test_id("message-user")).to_have_count(2)
        expect(answer_text(tab, 1)).to_have_text("A better answer.")
        expect(said(tab, 1).get_by_test_id("version-count")).to_contain_text("2 / 2")

    assert blocking_violations(page) == []
    said(page, 1).get_by_role("button", name="Previous version").click()
    expect(answer_text(page, 1)).to_have_text("Second answer.")
    expect(said(page, 1).get_by_test_id("version-count")).to_contain_text("1 / 2")
    said(page, 1).get_by_role("button", name="Next version").click()
    expect(answer_text(page, 1)).to_have_text("A better answer.")


def test_an_edit_branches_there_and_the_model_sees_only_the_path_shown(page: Page, model: FakeOpenAIThread):
    two_turns(page, model)
    other = second_tab(page)
    model.then(Script(tokens=["Edited", " answer."]), Script(tokens=["Third", " answer."]))

    said(page, 0).get_by_role("button", name="Edit").click()
    box = said(page, 0).get_by_role("textbox", name="Edit your message")
    expect(box).to_have_value("First question")
    assert blocking_violations(page) == []
    box.fill("First question, put better")
    said(page, 0).get_by_role("button", name="Send").click()

    wait_until_completed(page, 0)
    assert model.asked()[-1] == [user("First question, put better")]
    for tab in (page, other):
        expect(tab.get_by_test_id("message-user")).to_have_count(1)
        expect(said(tab, 0)).to_contain_text("First question, put better")
        expect(answer_text(tab, 0)).to_have_text("Edited answer.")

    send(page, "Third question")
    wait_until_completed(page, 1)
    assert model.asked()[-1] == [
        user("First question, put better"),
        assistant("Edited answer."),
        user("Third question"),
    ]

    # The first branch is one switch away, whole.
    said(page, 0).get_by_role("button", name="Previous version").click()
    expect(page.get_by_test_id("message-user")).to_have_count(2)
    expect(answer_text(page, 0)).to_have_text("First answer.")
    expect(answer_text(page, 1)).to_have_text("Second answer.")


def test_deleting_a_conversation_while_it_streams_stops_the_answer_for_every_tab(page: Page, model: FakeOpenAIThread):
    model.then(Script(tokens=[f" word{n}" for n in range(400)], interval=0.05))
    open_chat(page)
    send(page, "Write at length")
    expect(answer(page, 0)).to_have_attribute("data-status", "streaming")
    expect(answer_text(page, 0)).to_contain_text("word3")
    other = page.context.new_page()
    other.goto(f"/#{conversation_id(page)}")
    expect(answer_text(other, 0)).to_contain_text("word10")

    entry = page.get_by_role("navigation", name="Conversations").get_by_test_id("conversation-entry")
    entry.get_by_role("button", name="Delete").click()
    entry.get_by_role("group").get_by_role("button", name="Delete").click()

    expect(page.get_by_test_id("message-assistant")).to_have_count(0)
    # The tab that still shows it learns that it was stopped, and the model's response was closed.
    expect(answer(other, 0)).to_have_attribute("data-status", "cancelled")
    expect(answer(other, 0).get_by_test_id("answer-note")).to_have_text("stopped")
    model.wait_closed()
