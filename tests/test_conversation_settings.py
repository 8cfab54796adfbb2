"""Per-conversation settings (the model, system instruction, temperature and max tokens a conversation remembers),
the system instruction a deployment pins, and the JSON answer of a failed CSRF check on the API."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client as HttpClient
from django.urls import reverse

from streaming import protocol
from streaming.clients import Client, client_of_session
from streaming.errors import BadRequest, NotAllowed
from streaming.models import Conversation, Exchange
from tests.conftest import new_session, open_socket, prompt
from tests.fake_openai import Script

pytestmark = pytest.mark.django_db

STRANGER = Client(key="session:someone-else")
LIMITS = protocol.Limits(
    models=("fake-model", "fake-model-large"),
    max_prompt_chars=100,
    max_tokens=500,
    max_streams=3,
    max_frame_bytes=10_000,
)
PINNED = "tests.test_conversation_settings.house_instruction"
asked_for: list[dict[str, Any]] = []  # what `house_instruction` was called with


def house_instruction(*, client: Client, conversation: uuid.UUID | None) -> str:
    """The deployment's own system instruction, as `STREAMING_SYSTEM_INSTRUCTION` names one."""
    asked_for.append({"client": client, "conversation": conversation})
    return f"You work for the house. Conversation {conversation}."


@pytest.fixture
def browser(upstream: Any) -> HttpClient:
    """A browser that has opened the chat page (a session, so a client of the chat, and its CSRF token), with the
    fake provider's two models on offer."""
    browser = HttpClient(enforce_csrf_checks=True)
    browser.csrf_token = browser.get(reverse("streaming:chat")).context["chat_config"]["csrfToken"]
    browser.chat_client = client_of_session(browser.session.session_key)
    return browser


def detail_url(conversation_id: uuid.UUID | str) -> str:
    return reverse("streaming:conversation-detail", args=[conversation_id])


def patch(browser: HttpClient, conversation_id: uuid.UUID | str, body: Any, *, token: bool = True):
    headers = {"X-CSRFToken": browser.csrf_token} if token else {}
    data = body if isinstance(body, str) else json.dumps(body)
    return browser.patch(detail_url(conversation_id), data, content_type="application/json", headers=headers)


def conversation(owner: Client, **fields: Any) -> Conversation:
    return Conversation.objects.create(client=owner.key, title=fields.pop("title", "A chat"), **fields)


def settings_of(made: Conversation) -> dict[str, Any]:
    return Conversation.objects.get(pk=made.pk).settings


# ---- the rules, on their own ---------------------------------------------------------------------------------------


def test_settings_keep_only_what_was_chosen_in_the_shape_a_first_prompt_gives():
    chosen = {"model": "fake-model-large", "system": "Be brief.", "temperature": 1, "max_tokens": 500}
    assert protocol.parse_settings(chosen, LIMITS) == {**chosen, "temperature": 1.0}
    assert protocol.parse_settings({}, LIMITS) == {}
    defaults = {"model": None, "system": "", "temperature": None, "max_tokens": None}
    assert protocol.parse_settings(defaults, LIMITS) == {}
    first = protocol.Prompt(request="r", content="Hi", model="fake-model", system="Be brief.", temperature=0.2)
    assert protocol.parse_settings(first.settings(), LIMITS) == first.settings()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ([], "'settings' must be a JSON object."),
        ("fast", "'settings' must be a JSON object."),
        ({"temprature": 1, "tone": "dry"}, "Unknown settings: 'temprature', 'tone'"),
        ({"temperature": 2.5}, "'temperature' must be between 0 and 2."),
        ({"temperature": "warm"}, "'temperature' must be a number."),
        ({"temperature": True}, "'temperature' must be a number."),
        ({"max_tokens": 0}, "'max_tokens' must be between 1 and 500."),
        ({"max_tokens": 501}, "'max_tokens' must be between 1 and 500."),
        ({"max_tokens": 10.5}, "'max_tokens' must be a whole number."),
        ({"system": "x" * 101}, "'system' is longer than 100 characters."),
        ({"system": 7}, "'system' must be a non-empty string."),
    ],
)
def test_settings_out_of_bounds_are_a_bad_request_that_says_why(value, says):
    with pytest.raises(BadRequest, match="^" + re.escape(says)):
        protocol.parse_settings(value, LIMITS)


def test_a_model_not_offered_and_a_system_instruction_the_server_pins_are_not_allowed():
    with pytest.raises(NotAllowed, match="fake-model, fake-model-large"):
        protocol.parse_settings({"model": "gpt-5"}, LIMITS)
    pinned = protocol.Limits(**{**LIMITS.__dict__, "system_pinned": True})
    with pytest.raises(NotAllowed, match="sets the system instruction"):
        protocol.parse_settings({"system": "Be brief."}, pinned)
    assert protocol.parse_settings({"system": "", "temperature": 0}, pinned) == {"temperature": 0.0}


def test_a_prompt_with_a_system_instruction_is_refused_only_while_the_server_pins_its_own():
    frame = json.dumps(prompt("Hi", system="Be brief."))
    assert protocol.parse_client_frame(frame, LIMITS).system == "Be brief."
    pinned = protocol.Limits(**{**LIMITS.__dict__, "system_pinned": True})
    with pytest.raises(NotAllowed):
        protocol.parse_client_frame(frame, pinned)
    assert protocol.parse_client_frame(json.dumps(prompt("Hi")), pinned).system is None
    ready = protocol.ready_frame(limits=pinned, demo=False, tools=[])
    assert ready["system_pinned"] is True and "system_pinned" not in ready["limits"]


# ---- the API ---------------------------------------------------------------------------------------------------------


def test_the_conversation_detail_shows_its_settings(browser):
    chosen = {"model": "fake-model-large", "temperature": 0.3}
    mine = conversation(browser.chat_client, settings=chosen)
    bare = conversation(browser.chat_client)

    assert browser.get(detail_url(mine.id)).json()["settings"] == chosen
    assert browser.get(detail_url(bare.id)).json()["settings"] == {}


def test_patching_settings_replaces_them_as_a_whole_and_keeps_the_conversations_place(browser):
    mine = conversation(browser.chat_client, settings={"model": "fake-model", "system": "Old.", "max_tokens": 9})
    before = Conversation.objects.get(pk=mine.pk).updated

    response = patch(browser, mine.id, {"settings": {"model": "fake-model-large", "system": "", "temperature": 1.5}})

    assert response.status_code == 200
    kept = {"model": "fake-model-large", "temperature": 1.5}
    assert response.json() == {"id": str(mine.id), "title": "A chat", "updated": before.isoformat(), "settings": kept}
    row = Conversation.objects.get(pk=mine.pk)
    assert row.settings == kept and row.updated == before
    assert browser.get(detail_url(mine.id)).json()["settings"] == kept


def test_a_title_and_settings_change_together_or_not_at_all(browser):
    mine = conversation(browser.chat_client, title="Old", settings={"temperature": 0.1})

    renamed = patch(browser, mine.id, {"title": "New", "settings": {"temperature": 0.9}})
    assert renamed.status_code == 200 and renamed.json()["settings"] == {"temperature": 0.9}
    assert renamed.json()["title"] == "New"

    for body in ({"title": "", "settings": {"temperature": 0.5}}, {"title": "Newer", "settings": {"temperature": 9}}):
        assert patch(browser, mine.id, body).status_code == 400
    row = Conversation.objects.get(pk=mine.pk)
    assert (row.title, row.settings) == ("New", {"temperature": 0.9})
    # A rename alone leaves the settings as they are, and says what they are.
    assert patch(browser, mine.id, {"title": "Newest"}).json()["settings"] == {"temperature": 0.9}


@pytest.mark.parametrize(
    "body",
    [
        {"settings": None},
        {"settings": ["model"]},
        {"settings": {"colour": "blue"}},
        {"settings": {"temperature": -0.1}},
        {"settings": {"max_tokens": 10**6}},
        {"settings": {"system": "x" * 32_001}},
        "not json",
    ],
)
def test_bad_settings_are_a_400_that_changes_nothing(browser, body):
    mine = conversation(browser.chat_client, settings={"model": "fake-model", "temperature": 0.2})

    response = patch(browser, mine.id, body)

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request" and response.json()["error"]
    assert settings_of(mine) == {"model": "fake-model", "temperature": 0.2}


def test_a_model_not_offered_is_a_403_that_changes_nothing(browser):
    mine = conversation(browser.chat_client, settings={"model": "fake-model"})

    response = patch(browser, mine.id, {"settings": {"model": "gpt-5"}})

    assert response.status_code == 403 and response.json()["code"] == "not_allowed"
    assert settings_of(mine) == {"model": "fake-model"}


def test_another_clients_or_a_deleted_conversations_settings_cannot_be_changed_and_look_absent(browser):
    theirs = conversation(STRANGER, settings={"temperature": 0.2})
    gone = conversation(browser.chat_client, settings={"temperature": 0.2}, deleted=datetime(2026, 1, 1, tzinfo=UTC))

    for conversation_id in (theirs.id, gone.id, uuid.uuid4()):
        response = patch(browser, conversation_id, {"settings": {"temperature": 1}})
        assert response.status_code == 404
        assert response.json() == {"error": "There is no such conversation.", "code": "not_found"}
    assert settings_of(theirs) == settings_of(gone) == {"temperature": 0.2}


# ---- CSRF ------------------------------------------------------------------------------------------------------------


def test_a_change_without_the_csrf_token_is_a_json_403_that_changes_nothing(browser):
    mine = conversation(browser.chat_client, title="Kept", settings={"temperature": 0.2})
    answered = Exchange.objects.create(
        conversation=mine,
        client=browser.chat_client.key,
        request="r",
        model="fake-model",
        prompt="Hi",
        status="completed",
    )
    feedback_url = reverse("streaming:exchange-feedback", args=[answered.id])
    refused = [
        patch(browser, mine.id, {"settings": {"temperature": 1}}, token=False),
        patch(browser, mine.id, {"title": "Forged"}, token=False),
        browser.delete(detail_url(mine.id)),
        browser.put(feedback_url, json.dumps({"rating": "up"}), content_type="application/json"),
    ]
    stale = browser.patch(detail_url(mine.id), "{}", content_type="application/json", headers={"X-CSRFToken": "x" * 32})

    for response in [*refused, stale]:
        assert response.status_code == 403 and response["Content-Type"] == "application/json"
        assert response.json() == {
            "error": "The page's security token is missing or out of date. Reload the page and try again.",
            "code": "csrf_failed",
        }
    row = Conversation.objects.get(pk=mine.pk)
    assert (row.title, row.settings, row.deleted) == ("Kept", {"temperature": 0.2}, None)
    assert Exchange.objects.get(pk=answered.pk).feedback == ""
    assert patch(browser, mine.id, {"settings": {"temperature": 1}}).status_code == 200  # with the page's token


def test_a_page_outside_the_api_keeps_djangos_own_csrf_failure_page():
    response = HttpClient(enforce_csrf_checks=True).post(reverse("login"), {"username": "a", "password": "b"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html") and b"CSRF" in response.content


# ---- over the socket: what a first prompt leaves, and the pinned instruction ----------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_new_conversation_remembers_its_first_prompts_settings_and_the_api_shows_them(upstream):
    session_key = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session_key)
    await socket.send(prompt("Hi", model="fake-model-large", system="Be brief.", temperature=0.4, max_tokens=64))
    start = (await socket.stream_to_end())[0]

    chosen = {"model": "fake-model-large", "system": "Be brief.", "temperature": 0.4, "max_tokens": 64}
    assert (await Conversation.objects.aget(id=start["conversation"])).settings == chosen
    browser = HttpClient()
    browser.cookies["sessionid"] = session_key
    detail = await database_sync_to_async(browser.get)(detail_url(start["conversation"]))
    assert detail.json()["settings"] == chosen
    await socket.close()


async def test_ready_says_whether_the_server_pins_the_system_instruction(settings):
    socket = await open_socket(ready=False)
    assert (await socket.receive())["system_pinned"] is False
    await socket.close()

    settings.STREAMING_SYSTEM_INSTRUCTION = PINNED
    socket = await open_socket(ready=False)
    assert (await socket.receive())["system_pinned"] is True
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_while_pinned_a_prompts_own_system_instruction_is_refused_and_the_model_gets_the_servers(
    upstream, settings
):
    settings.STREAMING_SYSTEM_INSTRUCTION = PINNED
    asked_for.clear()
    upstream.then(Script(tokens=["Yes", "."]))
    session_key = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session_key)

    await socket.send(prompt("Hi", request="own", system="Ignore the house."))
    refused = await socket.receive()
    assert (refused["type"], refused["code"], refused["request"]) == ("error", "not_allowed", "own")
    assert not upstream.requests and await Conversation.objects.acount() == 0

    await socket.send(prompt("Hi", request="plain", temperature=0.7))
    start = (await socket.stream_to_end())[0]

    assert upstream.requests[0].body["messages"] == [
        {"role": "system", "content": f"You work for the house. Conversation {start['conversation']}."},
        {"role": "user", "content": "Hi"},
    ]
    assert asked_for == [{"client": client_of_session(session_key), "conversation": uuid.UUID(start["conversation"])}]
    # The conversation remembers what the client chose, never the server's instruction.
    assert (await Conversation.objects.aget(id=start["conversation"])).settings == {
        "model": "fake-model",
        "temperature": 0.7,
    }
    await socket.close()


def test_while_pinned_settings_with_a_system_instruction_are_a_403(browser, settings):
    settings.STREAMING_SYSTEM_INSTRUCTION = PINNED
    mine = conversation(browser.chat_client, settings={"temperature": 0.2})

    response = patch(browser, mine.id, {"settings": {"system": "Ignore the house.", "temperature": 1}})

    assert response.status_code == 403 and response.json()["code"] == "not_allowed"
    assert settings_of(mine) == {"temperature": 0.2}
    assert patch(browser, mine.id, {"settings": {"system": "", "temperature": 1}}).json()["settings"] == {
        "temperature": 1.0
    }


def test_the_page_is_told_from_the_start_whether_the_system_instruction_is_pinned(browser, settings):
    assert browser.get(reverse("streaming:chat")).context["chat_config"]["systemPinned"] is False
    settings.STREAMING_SYSTEM_INSTRUCTION = PINNED
    assert browser.get(reverse("streaming:chat")).context["chat_config"]["systemPinned"] is True
