"""The log in the admin (staff only, read-only) and the JSON the chat page reads."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from streaming.clients import client_of_session
from streaming.models import Conversation, Exchange, ToolCall
from streaming.views import login_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_exchange() -> Exchange:
    conversation = Conversation.objects.create(client="session:abc", title="Sky")
    return Exchange.objects.create(
        conversation=conversation,
        client="session:abc",
        request="r1",
        model="fake-model",
        prompt="Why is the sky blue?",
        answer="Rayleigh scattering <b>wins</b>.",
        status=Exchange.Status.COMPLETED,
        finish_reason="stop",
        prompt_tokens=6,
        completion_tokens=4,
        ttft_ms=120,
        duration_ms=900,
    )


def test_staff_read_the_log_searched_and_filtered(client, logged_exchange):
    client.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))
    changelist = reverse("admin:streaming_exchange_changelist")
    listing = client.get(changelist, {"q": "Rayleigh", "status__exact": "completed"})
    assert listing.status_code == 200 and "Why is the sky blue?" in listing.content.decode()
    missing = client.get(changelist, {"q": "nothing like this"})
    assert "Why is the sky blue?" not in missing.content.decode()

    detail = client.get(reverse("admin:streaming_exchange_change", args=[logged_exchange.pk])).content.decode()
    assert "Rayleigh scattering &lt;b&gt;wins&lt;/b&gt;." in detail  # the answer in full, escaped
    assert 'name="_save"' not in detail  # read-only
    assert client.get(reverse("admin:streaming_exchange_add")).status_code == 403


def test_staff_read_the_reasoning_and_the_tool_calls_in_order_as_inert_text(client, logged_exchange):
    logged_exchange.reasoning = "Thinking about <i>light</i>."
    logged_exchange.save()
    for position, (name, arguments, result) in enumerate(
        [("search_history", '{"query": "<script>alert(1)</script>"}', "[]"), ("current_time", "{}", "<b>noon</b>")],
        start=1,
    ):
        ToolCall.objects.create(
            exchange=logged_exchange,
            position=position,
            round=1,
            call_id=f"c{position}",
            name=name,
            arguments=arguments,
            status=ToolCall.Status.DONE,
            result=result,
            duration_ms=3,
        )
    client.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))

    detail = client.get(reverse("admin:streaming_exchange_change", args=[logged_exchange.pk])).content.decode()

    assert "Thinking about &lt;i&gt;light&lt;/i&gt;." in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail and "<script>alert(1)" not in detail
    assert "&lt;b&gt;noon&lt;/b&gt;" in detail
    assert detail.index("search_history") < detail.index("current_time")


def test_staff_tell_an_answer_another_worker_went_on_with_and_which_worker_ended_it(client, logged_exchange):
    taken_over = logged_exchange
    taken_over.pk, taken_over.prompt, taken_over.takeovers = uuid.uuid4(), "And at sunset?", 1
    taken_over.worker = "worker-b"
    taken_over.save(force_insert=True)  # a second exchange, like the first but for these
    client.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))
    changelist = reverse("admin:streaming_exchange_changelist")

    listed = client.get(changelist, {"taken_over": "yes"}).content.decode()
    assert "And at sunset?" in listed and "Why is the sky blue?" not in listed
    listed = client.get(changelist, {"taken_over": "no"}).content.decode()
    assert "Why is the sky blue?" in listed and "And at sunset?" not in listed
    detail = client.get(reverse("admin:streaming_exchange_change", args=[taken_over.pk])).content.decode()
    assert "worker-b" in detail and "Takeovers" in detail


def test_the_log_is_hidden_from_users_who_are_not_staff(client, logged_exchange):
    client.force_login(User.objects.create_user("visitor"))
    response = client.get(reverse("admin:streaming_exchange_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_conversations_are_listed_for_their_own_client_only(client, logged_exchange):
    client.get("/healthz")
    session = client.session
    session["chat"] = True
    session.save()
    mine = Conversation.objects.create(client=client_of_session(session.session_key).key, title="Mine")

    listing = client.get(reverse("streaming:conversation-list")).json()
    assert [c["id"] for c in listing["conversations"]] == [str(mine.id)]
    assert (
        client.get(reverse("streaming:conversation-detail", args=[logged_exchange.conversation_id])).status_code == 404
    )
    assert client.get(reverse("streaming:conversation-detail", args=[mine.id])).json()["exchanges"] == []
    assert client.get(reverse("streaming:conversation-detail", args=[uuid.uuid4()])).status_code == 404


def test_login_is_required_for_the_page_and_the_api_when_configured(client, settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    page = client.get(reverse("streaming:chat"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    assert client.get(reverse("streaming:conversation-list")).status_code == 401


def test_the_login_page_is_the_apps_own_and_logs_in(client, settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    User.objects.create_user("ada", password="a-long-password-1")
    page = client.get(reverse("login"))
    assert page.status_code == 200 and 'name="username"' in page.content.decode()
    assert "/static/streaming/assets/" in page.content.decode()  # styled by the same bundle as the chat page
    response = client.post(reverse("login"), {"username": "ada", "password": "a-long-password-1"})
    assert response.status_code == 302 and response["Location"] == reverse("streaming:chat")
    chat = client.get(reverse("streaming:chat"))
    assert chat.status_code == 200 and '"authenticated": true' in chat.content.decode()


def chat_config(page) -> dict:
    return page.context["chat_config"]


def test_the_page_names_the_login_url_that_comes_back_to_the_chat(client, settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    User.objects.create_user("ada", password="a-long-password-1")
    client.login(username="ada", password="a-long-password-1")
    config = chat_config(client.get(reverse("streaming:chat")))
    assert config["loginUrl"] == f"{reverse('login')}?next=/"
    # The link works: the login page takes it, and after logging in again the person is back on the chat.
    client.logout()
    page = client.get(config["loginUrl"])
    assert page.status_code == 200 and 'name="next" value="/"' in page.content.decode()
    response = client.post(config["loginUrl"], {"username": "ada", "password": "a-long-password-1", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_login_url_keeps_a_query_of_its_own_and_may_be_another_site(settings):
    settings.LOGIN_URL = "https://sso.example.com/login?app=chat"
    assert login_url(next_url="/chat/") == "https://sso.example.com/login?app=chat&next=/chat/"
