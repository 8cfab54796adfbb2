"""An anonymous visitor's session key is their login: it is never stored, shown or used in a name, only its hash.

Whoever reads a session key off the admin, the database or Redis could send it as a cookie and take over the chat.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client as Browser
from django.urls import reverse

from streaming.clients import client_of
from streaming.models import Conversation, Exchange
from tests.conftest import new_session, open_socket, prompt

BEFORE_HASHING = [("streaming", "0001_initial")]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stored_values(row: Any) -> list[str]:
    return [str(field.value_from_object(row)) for field in row._meta.concrete_fields]


def rows_holding(session_key: str) -> list[Any]:
    """Every logged row with the session key in one of its fields."""
    rows = [*Conversation.objects.all(), *Exchange.objects.all()]
    return [row for row in rows if any(session_key in value for value in stored_values(row))]


def admin_pages(exchange: Exchange) -> str:
    """The admin's lists and detail pages of the exchange and its conversation, as a superuser sees them."""
    browser = Browser()
    browser.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))
    urls = [
        reverse("admin:streaming_exchange_changelist"),
        reverse("admin:streaming_exchange_change", args=[exchange.pk]),
        reverse("admin:streaming_conversation_changelist"),
        reverse("admin:streaming_conversation_change", args=[exchange.conversation_id]),
    ]
    pages = [browser.get(url) for url in urls]
    assert [page.status_code for page in pages] == [200] * len(urls)
    return "".join(page.content.decode() for page in pages)


def listed_conversations(session_key: str) -> list[str]:
    browser = Browser()
    browser.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return [c["id"] for c in browser.get(reverse("streaming:conversation-list")).json()["conversations"]]


def test_an_anonymous_client_is_named_by_the_hash_of_its_session_key():
    class Session:
        session_key = "abcdefghijklmnopqrstuvwxyz012345"  # as Django makes them: 32 of [a-z0-9]

    client = client_of({"session": Session()})

    assert client.key == f"session:{sha256(Session.session_key)}"
    assert Session.session_key not in repr(client) and Session.session_key not in client.group
    assert client_of({"session": Session()}) == client  # every socket of the session is the same client


@pytest.mark.django_db(transaction=True)
async def test_the_log_and_the_admin_hold_no_session_key(upstream):
    session = await database_sync_to_async(new_session)()
    socket = await open_socket(session_key=session)
    await socket.send(prompt("Why is the sky blue?"))
    frames = await socket.stream_to_end()
    await socket.close()
    assert frames[-1]["type"] == "done"

    exchange = await Exchange.objects.aget(id=frames[0]["stream"])
    assert exchange.client == f"session:{sha256(session)}"
    assert await database_sync_to_async(rows_holding)(session) == []
    pages = await database_sync_to_async(admin_pages)(exchange)
    assert session not in pages
    assert sha256(session)[:12] in pages  # staff can still tell one visitor's exchanges from another's


def log_before_hashing(*, session_key: str, already_hashed: str) -> str:
    """Migrate back to before session keys were hashed and log a finished exchange the way that code did.

    Returns the id of its conversation.
    """
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_HASHING)
    apps = executor.loader.project_state(BEFORE_HASHING).apps
    conversation_model, exchange_model = (
        apps.get_model("streaming", "Conversation"),
        apps.get_model("streaming", "Exchange"),
    )
    old = {"client": f"session:{session_key}"}
    conversation = conversation_model.objects.create(**old, title="Sums")
    exchange_model.objects.create(
        conversation=conversation,
        **old,
        session_key=session_key,
        request="r0",
        model="fake-model",
        prompt="What is 2 + 2?",
        answer="4",
        status="completed",
    )
    # A row that is hashed already (the data migration ran before, or newer code wrote it) stays as it is.
    hashed = conversation_model.objects.create(client=f"session:{already_hashed}", title="Hashed")
    exchange_model.objects.create(
        conversation=hashed,
        client=hashed.client,
        session_key="",  # the field held 40 characters then: a hash is only in `client`
        request="r0",
        model="fake-model",
        prompt="p",
        status="completed",
    )
    return str(conversation.id)


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_conversation_started_before_the_migration_continues_after_it(upstream):
    session = await database_sync_to_async(new_session)()
    already_hashed = sha256("a session hashed before")
    try:
        conversation = await database_sync_to_async(log_before_hashing)(
            session_key=session, already_hashed=already_hashed
        )
    finally:
        await database_sync_to_async(migrate_to_latest)()

    assert await database_sync_to_async(rows_holding)(session) == []
    kept = await Exchange.objects.aget(conversation__title="Hashed")
    assert (kept.client, kept.session_key) == (f"session:{already_hashed}", "")

    socket = await open_socket(session_key=session)
    await socket.send(prompt("And 3 + 3?", conversation=conversation))
    start = await socket.receive()
    assert start["type"] == "start", start  # not `not_found`: the conversation is still this visitor's
    assert start["conversation"] == conversation
    assert (await socket.stream_to_end())[-1]["type"] == "done"
    await socket.close()
    assert upstream.requests[0].body["messages"] == [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3 + 3?"},
    ]
    assert await database_sync_to_async(listed_conversations)(session) == [conversation]
