"""The Settings panel in a real browser: what it sets reaches the model, and the conversation keeps it.

The server is a real daphne whose model is the fake OpenAI-compatible upstream (`tests/fake_openai.py`), run in a
thread of this process, so the test reads the very request the model got: its system message and temperature.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chat import conversation_id, open_chat, send, wait_until_completed
from tests.e2e.conftest import scripted_daphne
from tests.fake_openai import Script
from tests.live import Daphne, FakeOpenAIThread

pytestmark = pytest.mark.e2e

SYSTEM = "Answer like a ship's captain."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAIThread) -> Iterator[Daphne]:
    """Replaces conftest's server: the fake upstream answers, with two models to choose from."""
    with scripted_daphne(tmp_path_factory, "settings", upstream, OPENAI_MODELS="fake-model,fake-model-large") as daphne:
        yield daphne


def test_settings_set_in_the_panel_reach_the_model_and_come_back_with_the_conversation(
    page: Page, upstream: FakeOpenAIThread
) -> None:
    upstream.reset(default=Script(tokens=["Aye", ", ", "aye", "."]))
    open_chat(page)
    button = page.get_by_role("button", name="Settings")
    expect(button).to_have_attribute("aria-expanded", "false")

    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("form", name="Settings for the new chat")
    panel.get_by_label("System instruction").fill(SYSTEM)
    panel.get_by_label("Temperature").fill("0.7")
    panel.get_by_role("button", name="Save").click()
    expect(panel).to_have_count(0)
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")

    send(page, "How is the weather?")
    wait_until_completed(page, 0)

    [asked] = [request.body for request in list(upstream.fake.requests)]
    assert asked["messages"][0] == {"role": "system", "content": SYSTEM}
    assert asked["temperature"] == 0.7 and "max_tokens" not in asked

    # Reloaded, the conversation (named in the address) opens with its settings.
    opened = conversation_id(page)
    page.reload()
    expect(page.get_by_test_id("message-assistant")).to_have_count(1)
    assert conversation_id(page) == opened
    page.get_by_role("button", name="Settings").click()
    panel = page.get_by_role("form", name="Settings for this conversation")
    expect(panel.get_by_label("System instruction")).to_have_value(SYSTEM)
    expect(panel.get_by_label("Temperature")).to_have_value("0.7")
    expect(panel.get_by_label("Max tokens")).to_have_value("")
    expect(panel.get_by_label("Model")).to_have_value("fake-model")

    # Escape closes it, unchanged, with focus back on its button.
    panel.get_by_label("Temperature").fill("1.5")
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    expect(page.get_by_role("button", name="Settings")).to_be_focused()
