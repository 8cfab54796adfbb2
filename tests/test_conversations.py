"""The sidebar's conversation API: rename, delete (soft, cancelling what still streams) and search, each scoped to
its client, CSRF-protected, and behind the login when one is required."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.test import AsyncClient, Client
from django.urls import reverse

from streaming import selectors
from streaming.clients import Client as ChatClient
from streaming.clients import client_of_session
from streaming.deployment import running
from streaming.deployment.worker import WORKERS_GROUP
from streaming.models import Conversation, Exchange
from streaming.tools.builtin import search_history
from tests.conftest import new_session, open_socket, prompt
from tests.fake_openai import Script

pytestmark = pytest.mark.django_db

STRANGER = ChatClient(key="session:someone-else")


def own_client(client: Client) -> ChatClient:
    """The chat client a test client's browser session is (the page sets the session up the same way)."""
    client.get("/healthz")
    session = client.session
    session["chat"] = True
    session.save()
    return client_of_session(session.session_key)


def conversation(owner: ChatClient, title: str = "A chat", *exchanges: tuple[str, str], **fields) -> Conversation:
    made = Conversation.objects.create(client=owner.key, title=title, **fields)
    for prompt_text, answer in exchanges:
        Exchange.objects.create(
            conversation=made,
            client=owner.key,
            request="r",
            model="fake-model",
            prompt=prompt_text,
            answer=answer,
            status=Exchange.Status.COMPLETED,
        )
    return made


def detail_url(conversation_id) -> str:
    return reverse("streaming:conversation-detail", args=[conversation_id])


def rename(client: Client, conversation_id, body, **extra):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.patch(detail_url(conversation_id), data, content_type="application/json", **extra)


def search(client: Client, q: str, page: int | str | None = None):
    params = {"q": q} if page is None else {"q": q, "page": page}
    return client.get(reverse("streaming:conversation-search"), params)


# ---- rename -----------------------------------------------------------------------------------------------------


def test_rename_trims_the_title_and_keeps_the_conversations_place(client):
    mine = conversation(own_client(client), "Old")
    before = Conversation.objects.get(pk=mine.pk).updated

    response = rename(client, mine.id, {"title": "  A better name \n"})

    assert response.status_code == 200
    assert response.json() == {
        "id": str(mine.id),
        "title": "A better name",
        "updated": before.isoformat(),
        "settings": {},
    }
    row = Conversation.objects.get(pk=mine.pk)
    assert row.title == "A better name" and row.updated == before
    assert client.get(reverse("streaming:conversation-list")).json()["conversations"][0]["title"] == "A better name"


@pytest.mark.parametrize(
    "body",
    [{"title": ""}, {"title": "   "}, {"title": "x" * 201}, {"title": 42}, {"title": None}, {}, [], "not json"],
)
def test_a_bad_title_is_a_400_that_changes_nothing(client, body):
    mine = conversation(own_client(client), "Kept")

    response = rename(client, mine.id, body)

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request" and response.json()["error"]
    assert Conversation.objects.get(pk=mine.pk).title == "Kept"


def test_a_title_of_200_characters_is_fine(client):
    mine = conversation(own_client(client))
    assert rename(client, mine.id, {"title": "y" * 200}).status_code == 200
    assert Conversation.objects.get(pk=mine.pk).title == "y" * 200


def test_another_clients_conversation_cannot_be_renamed_or_deleted_and_looks_absent(client):
    own_client(client)
    theirs = conversation(STRANGER, "Theirs")

    for response in (rename(client, theirs.id, {"title": "Mine now"}), client.delete(detail_url(theirs.id))):
        assert response.status_code == 404
        assert response.json() == {"error": "There is no such conversation.", "code": "not_found"}
    assert rename(client, uuid.uuid4(), {"title": "Nobody's"}).status_code == 404
    row = Conversation.objects.get(pk=theirs.pk)
    assert row.title == "Theirs" and row.deleted is None


def test_a_logged_in_user_renames_and_deletes_their_own(client):
    user = User.objects.create_user("ada")
    client.force_login(user)
    mine = conversation(ChatClient(key=f"user:{user.pk}", user_id=user.pk))
    assert rename(client, mine.id, {"title": "Ada's"}).status_code == 200
    assert client.delete(detail_url(mine.id)).status_code == 200


def test_login_is_required_for_every_conversation_endpoint_when_configured(client, settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    mine = conversation(STRANGER)
    responses = [
        rename(client, mine.id, {"title": "New"}),
        client.delete(detail_url(mine.id)),
        search(client, "chat"),
        client.get(detail_url(mine.id)),
    ]
    for response in responses:
        assert response.status_code == 401 and response["Content-Type"] == "application/json"
        assert response.json()["error"]
    row = Conversation.objects.get(pk=mine.pk)
    assert row.title == "A chat" and row.deleted is None


def test_rename_and_delete_need_the_csrf_token_the_page_was_given():
    browser = Client(enforce_csrf_checks=True)
    token = browser.get(reverse("streaming:chat")).context["chat_config"]["csrfToken"]
    session = browser.session
    mine = conversation(client_of_session(session.session_key), "Old")

    assert rename(browser, mine.id, {"title": "Forged"}).status_code == 403
    assert browser.delete(detail_url(mine.id)).status_code == 403
    assert rename(browser, mine.id, {"title": "Forged"}, headers={"X-CSRFToken": "x" * 32}).status_code == 403
    row = Conversation.objects.get(pk=mine.pk)
    assert row.title == "Old" and row.deleted is None

    assert rename(browser, mine.id, {"title": "Renamed"}, headers={"X-CSRFToken": token}).status_code == 200
    assert browser.delete(detail_url(mine.id), headers={"X-CSRFToken": token}).status_code == 200
    row = Conversation.objects.get(pk=mine.pk)
    assert row.title == "Renamed" and row.deleted is not None
    assert search(browser, "Renamed").status_code == 200  # a GET needs no token


# ---- delete -----------------------------------------------------------------------------------------------------


def test_a_deleted_conversation_is_gone_for_its_client_and_kept_in_the_log(client):
    me = own_client(client)
    gone = conversation(me, "Tea notes", ("Green or black tea?", "Green."))
    kept = conversation(me, "Coffee notes", ("Which tea with coffee?", "None."))

    response = client.delete(detail_url(gone.id))

    assert response.status_code == 200 and response.json() == {"id": str(gone.id), "deleted": True}
    listed = client.get(reverse("streaming:conversation-list")).json()["conversations"]
    assert [c["id"] for c in listed] == [str(kept.id)]
    assert client.get(detail_url(gone.id)).status_code == 404
    assert [c["id"] for c in search(client, "tea").json()["conversations"]] == [str(kept.id)]
    assert rename(client, gone.id, {"title": "Back?"}).status_code == 404
    assert client.delete(detail_url(gone.id)).status_code == 404  # once
    # The log keeps it, with its exchanges; the selectors see it only when asked to.
    row = Conversation.objects.get(pk=gone.pk)
    assert row.deleted is not None and row.exchanges.count() == 1
    assert selectors.conversations_of(client=me, include_deleted=True).count() == 2


def test_the_admin_shows_deleted_conversations_and_filters_them(client):
    conversation(STRANGER, "Still here")
    conversation(STRANGER, "Deleted one", deleted=datetime(2026, 1, 1, tzinfo=UTC))
    client.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))
    changelist = reverse("admin:streaming_conversation_changelist")

    everything = client.get(changelist).content.decode()
    only_deleted = client.get(changelist, {"deleted__isempty": "0"}).content.decode()
    not_deleted = client.get(changelist, {"deleted__isempty": "1"}).content.decode()

    assert "Still here" in everything and "Deleted one" in everything
    assert "Deleted one" in only_deleted and "Still here" not in only_deleted
    assert "Still here" in not_deleted and "Deleted one" not in not_deleted


def test_the_search_tool_does_not_show_deleted_conversations():
    me = ChatClient(key="user:7", user_id=None)
    conversation(me, "Kept", ("Rust lifetimes?", "Borrowing."))
    conversation(me, "Gone", ("Rust macros?", "Hygiene."), deleted=datetime(2026, 1, 1, tzinfo=UTC))

    assert [found["prompt"] for found in search_history(query="rust", caller=me)] == ["Rust lifetimes?"]
    everything = selectors.exchange_matches(client=me, query="rust", include_deleted=True)
    assert sorted(e.prompt for e in everything) == ["Rust lifetimes?", "Rust macros?"]


# ---- search -----------------------------------------------------------------------------------------------------


def test_search_finds_titles_and_content_with_a_snippet_newest_first(client):
    me = own_client(client)
    by_title = conversation(me, "Sourdough starter")
    by_content = conversation(me, "Baking", ("How long does sourdough rise?", "Overnight, in a cool place."))
    conversation(me, "Unrelated", ("What is a monad?", "A monoid in the category of endofunctors."))
    conversation(STRANGER, "Sourdough too", ("sourdough?", "Yes."))
    Conversation.objects.filter(pk=by_title.pk).update(updated=datetime(2026, 1, 1, tzinfo=UTC))
    Conversation.objects.filter(pk=by_content.pk).update(updated=datetime(2026, 1, 2, tzinfo=UTC))

    body = search(client, "sourdough").json()

    assert [c["id"] for c in body["conversations"]] == [str(by_content.id), str(by_title.id)]
    assert body["page"] == 1 and body["next_page"] is None
    found = body["conversations"][0]
    assert found["title"] == "Baking" and found["updated"] == "2026-01-02T00:00:00+00:00"
    assert found["snippet"] == "How long does sourdough rise?"
    assert body["conversations"][1]["snippet"] == ""  # only its title matched
    assert search(client, "no such words anywhere").json()["conversations"] == []


def test_the_snippet_is_cut_around_the_word_found_and_stays_plain_text():
    me = ChatClient(key="session:me")
    long_answer = "word " * 50 + "<b>needle</b> in the haystack " + "more " * 50
    conversation(me, "Haystack", ("Where is it?", long_answer))

    [found] = selectors.conversation_search(client=me, query="needle")["conversations"]

    assert found["snippet"].startswith("…") and found["snippet"].endswith("…")
    assert "<b>needle</b> in the haystack" in found["snippet"]
    assert len(found["snippet"]) <= selectors.SNIPPET_BEFORE + selectors.SNIPPET_AFTER + 2


def test_search_is_paged_twenty_at_a_time(client):
    me = own_client(client)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(45):
        made = conversation(me, f"Chat {n}", (f"Question {n} about owls", "Hoot."))
        Conversation.objects.filter(pk=made.pk).update(updated=start + timedelta(minutes=n))

    pages = [search(client, "owls", page).json() for page in (1, 2, 3)]

    assert [len(p["conversations"]) for p in pages] == [20, 20, 5]
    assert [p["next_page"] for p in pages] == [2, 3, None]
    titles = [c["title"] for p in pages for c in p["conversations"]]
    assert titles == [f"Chat {n}" for n in reversed(range(45))]  # each once, newest first
    assert search(client, "owls", 4).json()["conversations"] == []


@pytest.mark.parametrize(
    ("q", "page"), [("", None), ("   ", None), ("x" * 501, None), ("owls", 0), ("owls", "two"), ("owls", 51)]
)
def test_a_bad_search_is_a_400(client, q, page):
    own_client(client)
    response = search(client, q, page)
    assert response.status_code == 400 and response.json()["code"] == "bad_request"


def test_the_search_selector_never_returns_another_clients_rows():
    me = ChatClient(key="session:me")
    conversation(me, "Mine", ("Ducks?", "Quack."))
    for n in range(30):
        conversation(STRANGER, f"Ducks {n}", ("Ducks?", "Quack."))

    found = selectors.conversation_search(client=me, query="ducks")["conversations"]
    assert [c["title"] for c in found] == ["Mine"]
    assert {e.client for e in selectors.exchange_matches(client=me, query="ducks")} == {me.key}
    assert selectors.exchange_search(client=me, query="ducks", limit=50)[0].conversation.title == "Mine"


def test_a_stream_still_running_is_not_searched_but_its_title_is():
    me = ChatClient(key="session:me")
    running_one = conversation(me, "Herons")
    Exchange.objects.create(conversation=running_one, client=me.key, request="r", model="m", prompt="herons fishing")
    assert [c["title"] for c in selectors.conversation_search(client=me, query="herons")["conversations"]] == ["Herons"]
    assert selectors.conversation_search(client=me, query="fishing")["conversations"] == []


@pytest.mark.postgresql
def test_search_on_postgresql_is_full_text_search_of_titles_and_content():
    me = ChatClient(key="session:me")
    conversation(me, "Cats on the sofa")
    conversation(me, "Pets", ("Where are the cats sleeping?", "Everywhere."))
    conversation(me, "Dogs", ("Dogs sleeping", "In the garden."))

    titles = {c["title"] for c in selectors.conversation_search(client=me, query="cat")["conversations"]}
    assert titles == {"Cats on the sofa", "Pets"}  # stemmed
    assert [c["title"] for c in selectors.conversation_search(client=me, query="sleep -cats")["conversations"]] == [
        "Dogs"
    ]


# ---- over a real socket: a running stream is cancelled, and a deleted conversation takes no prompt ----------------


@pytest.mark.django_db(transaction=True)
async def test_deleting_cancels_the_running_stream_and_the_conversation_takes_no_more_prompts(upstream):
    upstream.then(Script(tokens=["one", " two", " three"], hang_after=2))
    session_key = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session_key)
    await socket.send(prompt("Count slowly"))
    start = await socket.receive()
    await socket.receive_text("one two")
    browser = AsyncClient()
    browser.cookies["sessionid"] = session_key

    response = await browser.delete(detail_url(start["conversation"]))

    assert response.status_code == 200
    done = await socket.receive()
    assert done["type"] == "done" and done["stream"] == start["stream"] and done["finish_reason"] == "cancelled"
    await asyncio.wait_for(upstream.requests[0].closed.wait(), timeout=1)
    await running.streams_finished()
    row = await Exchange.objects.aget(id=start["stream"])
    assert (row.status, row.answer) == ("cancelled", "one two")  # the log keeps what was said
    assert (await Conversation.objects.aget(id=start["conversation"])).deleted is not None

    await socket.send(prompt("And then?", request="r2", conversation=start["conversation"]))
    refused = await socket.receive()
    assert refused["type"] == "error" and refused["code"] == "not_found" and refused["request"] == "r2"
    assert len(upstream.requests) == 1
    await socket.close()


@pytest.mark.django_db(transaction=True)
async def test_a_stream_on_another_worker_is_cancelled_through_the_workers_group():
    session_key = await database_sync_to_async(new_session)()
    owner = client_of_session(session_key)
    made = await Conversation.objects.acreate(client=owner.key, title="Elsewhere")
    elsewhere = await Exchange.objects.acreate(
        conversation=made, client=owner.key, request="r", model="m", prompt="Hi", worker="another-worker"
    )
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(WORKERS_GROUP, channel)
    browser = AsyncClient()
    browser.cookies["sessionid"] = session_key

    response = await browser.delete(detail_url(made.id))

    assert response.status_code == 200
    message = await asyncio.wait_for(layer.receive(channel), timeout=2)
    assert message == {"type": "worker.cancel", "stream": str(elsewhere.id)}
    await layer.group_discard(WORKERS_GROUP, channel)
