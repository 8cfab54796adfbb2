"""Sending, queueing, stopping, phones, an expired login, Retry after a reload and Copy, in a real browser.

The server is a real daphne whose model is the fake OpenAI-compatible upstream (`tests/fake_openai.py`), run in a
thread of this process, so a test reads what the model was asked (a follow-up must carry the whole answer it
follows). Login is required, as outside debug, so that a login can expire. Where a test needs the socket to be slow or
to drop, Playwright's WebSocket route holds it back or closes it; otherwise every frame goes to the server as it is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.e2e.chat import ANSWER_TIMEOUT_MS, answer, answer_text, conversation_id, wait_until_completed
from tests.e2e.conftest import scripted_daphne
from tests.fake_openai import Script
from tests.live import ROOT, Daphne, FakeOpenAIThread

pytestmark = pytest.mark.e2e

USERNAME, PASSWORD = "ada", "a-long-password-1"
# 40 words at 20 a second: an answer long enough to type a follow-up or press Escape while it streams.
WORDS = [f" word{n}" for n in range(40)]
ANSWER = "".join(WORDS).strip()
SOCKET = "**/ws/chat/"


@pytest.fixture(autouse=True)
def fresh_model(upstream: FakeOpenAIThread) -> FakeOpenAIThread:
    upstream.reset(default=Script(tokens=list(WORDS), interval=0.05))
    return upstream


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAIThread) -> Iterator[Daphne]:
    """Replaces conftest's server: the fake upstream answers, login is required, and there is one user."""

    def create_user(env: dict[str, str]) -> None:
        user = "from django.contrib.auth.models import User; User.objects.create_user(%r, password=%r)"
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", user % (USERNAME, PASSWORD)], env=env, cwd=ROOT, check=True
        )

    with scripted_daphne(
        tmp_path_factory, "composer", upstream, prepare=create_user, STREAMING_REQUIRE_LOGIN="1"
    ) as daphne:
        yield daphne


class Sockets:
    """Every socket the page opens, through a route: passed through to the server, or held back until `release`."""

    def __init__(self, page: Page) -> None:
        self.routes: list[WebSocketRoute] = []
        self.holding = False
        self.held: list[WebSocketRoute] = []
        self.prompts: list[dict[str, Any]] = []
        page.route_web_socket(SOCKET, self._opened)

    def _opened(self, route: WebSocketRoute) -> None:
        self.routes.append(route)
        if self.holding:
            self.held.append(route)  # open for the page, but no `ready` comes until it is released
        else:
            self._connect(route)

    def _connect(self, route: WebSocketRoute) -> None:
        server = route.connect_to_server()

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "prompt":
                self.prompts.append(frame)
            server.send(message)

        route.on_message(to_server)

    def wait_for(self, *, count: int, page: Page, timeout: float = 10) -> None:
        """Until the page has opened `count` sockets (route callbacks run while Playwright waits on the page)."""
        deadline = time.monotonic() + timeout
        while len(self.routes) < count:
            assert time.monotonic() < deadline, f"the page opened {len(self.routes)} sockets, not {count}"
            page.wait_for_timeout(20)

    def release(self) -> None:
        self.holding = False
        while self.held:
            self._connect(self.held.pop(0))


def log_in(page: Page) -> None:
    """Opens the chat as a person does when login is required: the login page first, then back to the chat."""
    page.goto("/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("composer")).to_be_editable()


def connected(page: Page) -> None:
    expect(page.get_by_test_id("connection-status")).to_have_text("connected")


def send(page: Page, prompt: str) -> None:
    composer = page.get_by_test_id("composer")
    composer.fill(prompt)
    composer.press("Enter")
    expect(composer).to_have_value("")


def prompts_shown(page: Page):
    """What the person's messages say, without their notes and buttons."""
    return page.get_by_test_id("message-user").locator(".bubble")


def queued_note(page: Page, index: int):
    return page.get_by_test_id("message-user").nth(index).get_by_test_id("queued-note")


def saved_exchanges(page: Page) -> list[dict[str, Any]]:
    response = page.request.get(f"/api/conversations/{conversation_id(page)}/")
    assert response.ok, response.status
    return response.json()["exchanges"]


def test_enter_before_the_socket_is_ready_and_during_a_reconnect_sends_the_prompt_once_it_is(
    page: Page, fresh_model: FakeOpenAIThread
) -> None:
    sockets = Sockets(page)
    sockets.holding = True
    log_in(page)
    # The socket is held: open (Playwright's route opens it for the page) but no `ready` comes.
    send(page, "Hello before the connection")
    expect(prompts_shown(page)).to_have_text(["Hello before the connection"])
    expect(queued_note(page, 0)).to_contain_text("waiting for the connection")
    assert fresh_model.asked() == []

    sockets.release()
    wait_until_completed(page, 0)
    expect(queued_note(page, 0)).to_have_count(0)
    expect(answer_text(page, 0)).to_have_text(ANSWER)

    # The socket drops; Enter while the page reconnects is held until the new socket is ready, then sent once.
    sockets.holding = True
    sockets.routes[-1].close(code=4000, reason="test drop")
    sockets.wait_for(count=2, page=page)  # the page noticed the drop and opened its next socket, held like the first
    send(page, "Hello during the reconnect")
    expect(queued_note(page, 1)).to_contain_text("waiting for the connection")
    sockets.release()
    wait_until_completed(page, 1)
    expect(queued_note(page, 1)).to_have_count(0)
    assert [prompt["content"] for prompt in sockets.prompts] == [
        "Hello before the connection",
        "Hello during the reconnect",
    ]
    asked = fresh_model.asked()
    assert len(asked) == 2
    assert asked[0][-1] == {"role": "user", "content": "Hello before the connection"}
    assert asked[1][-1] == {"role": "user", "content": "Hello during the reconnect"}
    assert sockets.prompts[1]["conversation"] == conversation_id(page), "the second prompt left the conversation"


def test_a_follow_up_typed_while_an_answer_streams_waits_for_it_and_the_model_gets_the_whole_answer(
    page: Page, fresh_model: FakeOpenAIThread
) -> None:
    log_in(page)
    connected(page)
    send(page, "First question")
    expect(answer(page, 0)).to_have_attribute("data-status", "streaming")
    expect(answer_text(page, 0)).to_contain_text("word3")
    send(page, "And a follow-up")
    expect(queued_note(page, 1)).to_have_text("queued: sent when the answer above ends")
    # Shown under the running answer, and nothing asked of the model for it yet.
    expect(prompts_shown(page)).to_have_text(["First question", "And a follow-up"])
    expect(answer(page, 0)).to_have_attribute("data-status", "streaming")
    assert len(fresh_model.asked()) == 1

    wait_until_completed(page, 0)
    wait_until_completed(page, 1)
    expect(queued_note(page, 1)).to_have_count(0)
    asked = fresh_model.asked()
    assert len(asked) == 2
    # The model got the follow-up with the whole first exchange before it.
    assert [(message["role"], message["content"].strip()) for message in asked[1][-3:]] == [
        ("user", "First question"),
        ("assistant", ANSWER),
        ("user", "And a follow-up"),
    ]
    # And the log agrees: the second exchange was created after the first had ended, in the same conversation.
    first, second = saved_exchanges(page)
    first_end = datetime.fromisoformat(first["created"]) + timedelta(milliseconds=first["duration_ms"])
    assert first["status"] == "completed" and first["answer"].strip() == ANSWER
    assert datetime.fromisoformat(second["created"]) >= first_end


def test_stop_is_where_send_is_while_an_answer_streams_and_escape_stops_it(page: Page) -> None:
    log_in(page)
    connected(page)
    composer = page.get_by_test_id("composer")
    composer.fill("line one")
    composer.press("Shift+Enter")
    composer.press_sequentially("line two")
    expect(composer).to_have_value("line one\nline two")  # desktop: Shift+Enter is a new line
    send_button = page.get_by_role("button", name="Send")
    send_box = send_button.bounding_box()
    composer.press("Enter")
    expect(answer(page, 0)).to_have_attribute("data-status", "streaming")

    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_have_count(0)
    stop_box = stop.bounding_box()
    assert send_box and stop_box
    # Same place: the right edges line up, and it is on the same row.
    assert abs((send_box["x"] + send_box["width"]) - (stop_box["x"] + stop_box["width"])) < 2
    assert abs(send_box["y"] - stop_box["y"]) < 8

    page.keyboard.press("Escape")
    expect(answer(page, 0)).to_have_attribute("data-status", "cancelled", timeout=ANSWER_TIMEOUT_MS)
    expect(answer(page, 0).get_by_test_id("answer-note")).to_have_text("stopped")
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)
    expect(page.get_by_role("button", name="Send")).to_be_visible()


def test_on_a_phone_enter_makes_a_new_line_and_the_send_button_sends(phone_page: Page) -> None:
    page = phone_page
    log_in(page)
    connected(page)
    assert page.evaluate("matchMedia('(pointer: coarse) and (hover: none)').matches")
    composer = page.get_by_test_id("composer")
    expect(composer).to_have_attribute("enterkeyhint", "enter")
    composer.tap()
    composer.press_sequentially("line one")
    composer.press("Enter")
    composer.press_sequentially("line two")
    expect(composer).to_have_value("line one\nline two")
    expect(page.get_by_test_id("message-user")).to_have_count(0)

    page.get_by_role("button", name="Send").tap()
    expect(composer).to_have_value("")
    expect(prompts_shown(page)).to_have_text(["line one\nline two"])
    wait_until_completed(page, 0)


def test_a_login_that_expires_shows_one_notice_whose_link_logs_in_and_comes_back(page: Page) -> None:
    sockets = Sockets(page)
    log_in(page)
    connected(page)
    send(page, "Before the login expired")
    wait_until_completed(page, 0)
    address = page.url

    # The session goes (logged out elsewhere, or expired), and the socket drops: the next one is refused with 4401.
    page.context.clear_cookies()
    sockets.routes[-1].close(code=4000, reason="test drop")
    expect(page.get_by_test_id("connection-status")).to_have_text("logged out")
    notice = page.get_by_test_id("login-notice")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text("no longer logged in")
    expect(page.get_by_test_id("error")).to_have_count(0)
    # The page stops trying: a retry would come within a second, and would add a socket.
    page.wait_for_timeout(1500)
    assert len(sockets.routes) == 2
    expect(page.get_by_test_id("login-notice")).to_have_count(1)

    notice.get_by_role("link", name="Log in").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(address)
    connected(page)
    expect(prompts_shown(page)).to_have_text(["Before the login expired"])


def test_after_a_reload_a_failed_answer_keeps_its_retry_which_asks_again_as_a_new_version(
    page: Page, fresh_model: FakeOpenAIThread
) -> None:
    prompt = "A question the provider drops"
    fresh_model.then(Script(tokens=list(WORDS), interval=0.02, drop_after=5))
    log_in(page)
    connected(page)
    send(page, prompt)
    expect(answer(page, 0)).to_have_attribute("data-status", "failed", timeout=ANSWER_TIMEOUT_MS)
    expect(answer(page, 0).get_by_role("button", name="Retry")).to_be_visible()

    page.reload()
    connected(page)
    expect(answer(page, 0)).to_have_attribute("data-status", "failed")
    expect(answer(page, 0).get_by_test_id("error")).to_be_visible()
    retry = answer(page, 0).get_by_role("button", name="Retry")
    expect(retry).to_be_enabled()
    retry.click()
    # The new answer is a version of the failed one, shown in its place; the failed one is a switch away.
    wait_until_completed(page, 0)
    expect(prompts_shown(page)).to_have_text([prompt])
    asked = fresh_model.asked()
    assert asked[1] == [{"role": "user", "content": prompt}]
    page.get_by_role("button", name="Previous version").click()
    expect(answer(page, 0)).to_have_attribute("data-status", "failed")


def test_copy_gives_an_answers_markdown_and_a_persons_message_and_says_copied(
    page: Page, fresh_model: FakeOpenAIThread
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    markdown = ["Use **bold** ", "and `code`:", "\n\n- one\n- two"]
    fresh_model.then(Script(tokens=markdown))
    log_in(page)
    connected(page)
    send(page, "Show me\nsome markdown")
    wait_until_completed(page, 0)

    # Found by its name; then held by its test id, since its name becomes "Copied".
    expect(answer(page, 0).get_by_role("button", name="Copy", exact=True)).to_have_count(1)
    copy_answer = answer(page, 0).get_by_test_id("copy")
    copy_answer.click()
    expect(copy_answer).to_have_attribute("data-label", "Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "".join(markdown)
    expect(copy_answer).to_have_attribute("data-label", "Copy", timeout=5_000)

    message = page.get_by_test_id("message-user").first
    message.hover()
    expect(message.get_by_role("button", name="Copy", exact=True)).to_be_visible()
    copy_prompt = message.get_by_test_id("copy")
    copy_prompt.click()
    expect(copy_prompt).to_have_attribute("data-label", "Copied")
    expect(message.get_by_role("button", name="Copied", exact=True)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "Show me\nsome markdown"
