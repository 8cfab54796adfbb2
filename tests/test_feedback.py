"""Feedback on an answer: the service that keeps it, the endpoint the page sends it to, the conversation API that
gives it back, and the admin that filters by it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from streaming.clients import Client, client_of_session
from streaming.errors import BadRequest, NotFound, StillStreaming
from streaming.models import FEEDBACK_COMMENT_CHARS, Conversation, Exchange
from streaming.services import exchange_rate

pytestmark = pytest.mark.django_db

ALICE = Client(key="session:alice")
BOB = Client(key="session:bob")


def exchange_of(client: Client, *, status: str = Exchange.Status.COMPLETED, **fields: Any) -> Exchange:
    conversation = Conversation.objects.create(client=client.key, title="Sky")
    return Exchange.objects.create(
        conversation=conversation,
        client=client.key,
        request="r1",
        model="demo",
        **{
            "prompt": "Why is the sky blue?",
            "answer": "" if status == "streaming" else "Rayleigh scattering.",
            **fields,
        },
        status=status,
    )


def feedback_of(exchange: Exchange) -> tuple[str, str, bool]:
    row = Exchange.objects.get(id=exchange.id)
    return row.feedback, row.feedback_comment, row.feedback_at is not None


# ---- the service ---------------------------------------------------------------------------------------------------


def test_a_rating_with_a_comment_is_kept_with_the_exchange_and_changes_nothing_else():
    exchange = exchange_of(ALICE)
    before = Exchange.objects.filter(id=exchange.id).values().get()

    rated = exchange_rate(client=ALICE, exchange_id=exchange.id, rating="down", comment="  Too vague.\n")

    assert (rated.feedback, rated.feedback_comment) == ("down", "Too vague.")
    assert feedback_of(exchange) == ("down", "Too vague.", True)
    after = Exchange.objects.filter(id=exchange.id).values().get()
    assert {k: v for k, v in after.items() if not k.startswith("feedback")} == {
        k: v for k, v in before.items() if not k.startswith("feedback")
    }


def test_rating_again_replaces_the_feedback_and_null_takes_it_back():
    exchange = exchange_of(ALICE)
    exchange_rate(client=ALICE, exchange_id=exchange.id, rating="down", comment="Wrong.")
    exchange_rate(client=ALICE, exchange_id=exchange.id, rating="up")
    assert feedback_of(exchange) == ("up", "", True)

    exchange_rate(client=ALICE, exchange_id=exchange.id, rating=None)
    assert feedback_of(exchange) == ("", "", False)


@pytest.mark.parametrize("status", ["cancelled", "failed", "interrupted"])
def test_every_ended_answer_can_be_rated(status):
    exchange = exchange_of(ALICE, status=status)
    exchange_rate(client=ALICE, exchange_id=exchange.id, rating="down")
    assert feedback_of(exchange)[0] == "down"


@pytest.mark.parametrize(
    ("rating", "comment", "says"),
    [
        ("meh", "", "The rating must be"),
        (1, "", "The rating must be"),
        (["up"], "", "The rating must be"),
        ("UP", "", "The rating must be"),
        ("up", 42, "The comment must be a string"),
        ("up", "x" * (FEEDBACK_COMMENT_CHARS + 1), f"at most {FEEDBACK_COMMENT_CHARS} characters"),
        ("up", "a\x00b", "NUL"),
        (None, "A comment alone", "A comment needs a rating"),
    ],
)
def test_bad_feedback_is_refused_and_changes_nothing(rating, comment, says):
    exchange = exchange_of(ALICE)
    exchange_rate(client=ALICE, exchange_id=exchange.id, rating="up", comment="Fine.")
    with pytest.raises(BadRequest, match=says):
        exchange_rate(client=ALICE, exchange_id=exchange.id, rating=rating, comment=comment)
    assert feedback_of(exchange) == ("up", "Fine.", True)


def test_a_comment_of_the_longest_length_is_kept():
    exchange = exchange_of(ALICE)
    exchange_rate(client=ALICE, exchange_id=exchange.id, rating="up", comment="é" * FEEDBACK_COMMENT_CHARS)
    assert feedback_of(exchange)[1] == "é" * FEEDBACK_COMMENT_CHARS


def test_only_the_exchanges_client_can_rate_it():
    exchange = exchange_of(ALICE)
    with pytest.raises(NotFound):
        exchange_rate(client=BOB, exchange_id=exchange.id, rating="down")
    with pytest.raises(NotFound):
        exchange_rate(client=ALICE, exchange_id=uuid.uuid4(), rating="down")
    assert feedback_of(exchange) == ("", "", False)


def test_an_answer_of_a_deleted_conversation_cannot_be_rated():
    exchange = exchange_of(ALICE)
    Conversation.objects.filter(id=exchange.conversation_id).update(deleted=timezone.now())
    with pytest.raises(NotFound):
        exchange_rate(client=ALICE, exchange_id=exchange.id, rating="up")


def test_an_answer_still_streaming_cannot_be_rated():
    exchange = exchange_of(ALICE, status=Exchange.Status.STREAMING)
    with pytest.raises(StillStreaming):
        exchange_rate(client=ALICE, exchange_id=exchange.id, rating="up")
    assert feedback_of(exchange) == ("", "", False)


# ---- the endpoint --------------------------------------------------------------------------------------------------


@pytest.fixture
def browser() -> HttpClient:
    """A browser that has opened the chat page: a session (so a client of the chat) and the page's CSRF token."""
    browser = HttpClient(enforce_csrf_checks=True)
    page = browser.get(reverse("streaming:chat"))
    browser.csrf_token = page.context["chat_config"]["csrfToken"]
    browser.chat_client = client_of_session(browser.session.session_key)
    return browser


def put(browser: HttpClient, exchange_id: uuid.UUID, body: Any, *, token: bool = True, raw: bool = False):
    headers = {"X-CSRFToken": browser.csrf_token} if token else {}
    data = body if raw else json.dumps(body)
    url = reverse("streaming:exchange-feedback", args=[exchange_id])
    return browser.put(url, data, content_type="application/json", headers=headers)


def test_the_page_rates_an_answer_and_the_conversation_api_gives_the_rating_back(browser):
    exchange = exchange_of(browser.chat_client)

    response = put(browser, exchange.id, {"rating": "down", "comment": "It <b>missed</b> the point."})

    assert response.status_code == 200
    assert response.json() == {
        "stream": str(exchange.id),
        "feedback": {"rating": "down", "comment": "It <b>missed</b> the point."},
    }
    detail = browser.get(reverse("streaming:conversation-detail", args=[exchange.conversation_id])).json()
    assert detail["exchanges"][0]["feedback"] == {"rating": "down", "comment": "It <b>missed</b> the point."}

    assert put(browser, exchange.id, {"rating": None}).json()["feedback"] is None
    detail = browser.get(reverse("streaming:conversation-detail", args=[exchange.conversation_id])).json()
    assert detail["exchanges"][0]["feedback"] is None


def test_the_page_is_told_where_to_send_feedback(browser):
    config = browser.get(reverse("streaming:chat")).context["chat_config"]
    assert config["feedbackUrl"] == "/api/exchanges/{stream}/feedback/"
    exchange = exchange_of(browser.chat_client)
    url = config["feedbackUrl"].replace("{stream}", str(exchange.id))
    assert url == reverse("streaming:exchange-feedback", args=[exchange.id])


def test_feedback_without_the_csrf_token_is_refused(browser):
    exchange = exchange_of(browser.chat_client)
    response = put(browser, exchange.id, {"rating": "up"}, token=False)
    assert response.status_code == 403
    assert feedback_of(exchange) == ("", "", False)


def test_another_clients_answer_or_an_unknown_one_is_not_found(browser):
    theirs = exchange_of(BOB)
    for exchange_id in (theirs.id, uuid.uuid4()):
        response = put(browser, exchange_id, {"rating": "up"})
        assert response.status_code == 404 and response.json()["error"] == "There is no such answer."
    assert feedback_of(theirs) == ("", "", False)


def test_a_streaming_answer_is_a_conflict(browser):
    exchange = exchange_of(browser.chat_client, status=Exchange.Status.STREAMING)
    response = put(browser, exchange.id, {"rating": "up"})
    assert response.status_code == 409
    assert response.json()["error"] == "This answer is still being written. Rate it once it has ended."
    assert feedback_of(exchange) == ("", "", False)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "The body must be JSON."),
        (b"\xff\xfe", "The body must be JSON."),
        (b"", "The body must be a JSON object."),
        (b'["up"]', "The body must be a JSON object."),
        (b'{"comment": "no rating"}', 'Send {"rating"'),
        (b'{"rating": "sideways"}', "The rating must be"),
        (b'{"rating": "up", "comment": {"a": 1}}', "The comment must be a string."),
    ],
)
def test_bad_input_is_a_400_that_says_why_and_changes_nothing(browser, body, says):
    exchange = exchange_of(browser.chat_client)
    put(browser, exchange.id, {"rating": "up", "comment": "Good."})
    response = put(browser, exchange.id, body, raw=True)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json" and says in response.json()["error"]
    assert feedback_of(exchange) == ("up", "Good.", True)


def test_feedback_is_only_put(browser):
    exchange = exchange_of(browser.chat_client)
    url = reverse("streaming:exchange-feedback", args=[exchange.id])
    assert browser.get(url).status_code == 405
    assert browser.post(url, {}, headers={"X-CSRFToken": browser.csrf_token}).status_code == 405


def test_login_is_required_for_feedback_when_configured(settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    exchange = exchange_of(ALICE)
    browser = HttpClient(enforce_csrf_checks=True)
    token = browser.get(reverse("login")).context["csrf_token"]

    response = browser.put(
        reverse("streaming:exchange-feedback", args=[exchange.id]),
        json.dumps({"rating": "up"}),
        content_type="application/json",
        headers={"X-CSRFToken": str(token)},
    )

    assert response.status_code == 401 and "error" in response.json()
    assert feedback_of(exchange) == ("", "", False)


def test_a_logged_in_user_rates_their_own_answers(settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    ada = User.objects.create_user("ada", password="a-long-password-1")
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(ada)
    token = browser.get(reverse("streaming:chat")).context["chat_config"]["csrfToken"]
    mine = exchange_of(Client(key=f"user:{ada.pk}", user_id=ada.pk))

    response = browser.put(
        reverse("streaming:exchange-feedback", args=[mine.id]),
        json.dumps({"rating": "up", "comment": "Spot on."}),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 200 and feedback_of(mine) == ("up", "Spot on.", True)


# ---- the admin -----------------------------------------------------------------------------------------------------


def test_staff_see_the_rating_filter_by_it_and_read_the_comment_as_inert_text(client):
    liked = exchange_of(ALICE, prompt="A liked question")
    disliked = exchange_of(ALICE, prompt="A disliked question")
    exchange_of(ALICE, prompt="An unrated question")
    exchange_rate(client=ALICE, exchange_id=liked.id, rating="up")
    exchange_rate(client=ALICE, exchange_id=disliked.id, rating="down", comment="<script>alert(1)</script> wrong")
    client.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))
    changelist = reverse("admin:streaming_exchange_changelist")

    everything = client.get(changelist).content.decode()
    assert "bad (thumbs down)" in everything and "good (thumbs up)" in everything  # the column, and the filter
    down = client.get(changelist, {"feedback__exact": "down"}).content.decode()
    assert "A disliked question" in down
    assert "A liked question" not in down and "An unrated question" not in down
    up = client.get(changelist, {"feedback__exact": "up"}).content.decode()
    assert "A liked question" in up and "A disliked question" not in up
    searched = client.get(changelist, {"q": "wrong"}).content.decode()
    assert "A disliked question" in searched and "A liked question" not in searched

    detail = client.get(reverse("admin:streaming_exchange_change", args=[disliked.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; wrong" in detail and "<script>alert(1)" not in detail
    assert "bad (thumbs down)" in detail
