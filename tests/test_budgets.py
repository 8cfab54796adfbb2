"""Budgets: prompts per minute and tokens per day, per client, refused before anything is saved or sent upstream,
with `retry_after_ms`; an answer the model reported no usage for still counts; an anonymous visitor is counted by
session and by address. Two real workers counting one client are in `test_workers.py`."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection, connections, transaction
from django.utils import timezone

from chatproject.asgi import application
from streaming import budgets
from streaming.budgets import Budget
from streaming.clients import Client as ChatClient
from streaming.errors import TooManyPrompts
from streaming.models import Conversation, Exchange
from tests.conftest import ORIGIN, Socket, new_session, prompt
from tests.fake_openai import Script

pytestmark = pytest.mark.django_db(transaction=True)


async def visitor(session: str | None = None, address: str = "203.0.113.7") -> Socket:
    """A socket of an anonymous visitor with this session (a new one by default), from this address."""
    session = session or await database_sync_to_async(new_session)()
    communicator = WebsocketCommunicator(
        application, "/ws/chat/", headers=[ORIGIN, (b"cookie", f"sessionid={session}".encode())]
    )
    communicator.scope["client"] = (address, 50000)  # as daphne gives it
    connected, _ = await communicator.connect()
    assert connected
    socket = Socket(communicator)
    assert (await socket.receive())["type"] == "ready"
    return socket


async def answered(socket: Socket, request: str) -> list[dict]:
    await socket.send(prompt(request=request))
    frames = await socket.stream_to_end()
    assert frames[-1]["type"] == "done", frames[-1]
    return frames


async def refused(socket: Socket, request: str) -> dict:
    await socket.send(prompt(request=request))
    error = await socket.receive()
    assert (error["type"], error["request"]) == ("error", request)
    return error


async def test_a_prompt_over_the_minutes_limit_is_refused_before_anything_is_saved_or_asked(upstream, settings):
    settings.STREAMING_PROMPTS_PER_MINUTE = 2
    socket = await visitor()
    await answered(socket, "one")
    await answered(socket, "two")
    asked, saved = len(upstream.requests), await Exchange.objects.acount()

    error = await refused(socket, "three")

    assert (error["code"], error["retryable"]) == ("too_many_prompts", True)
    assert 0 < error["retry_after_ms"] <= 60_000
    assert "Try again in" in error["message"]
    assert (len(upstream.requests), await Exchange.objects.acount()) == (asked, saved)
    await socket.close()


async def test_the_minute_frees_up_as_prompts_leave_it(upstream, settings):
    settings.STREAMING_PROMPTS_PER_MINUTE = 1
    socket = await visitor()
    await answered(socket, "one")
    await Exchange.objects.all().aupdate(created=timezone.now() - timedelta(seconds=61))

    await answered(socket, "two")
    await socket.close()


async def test_tokens_the_model_reported_count_against_the_day(upstream, settings):
    settings.STREAMING_TOKENS_PER_DAY = 4
    # The fake model reports a word a token of the prompt ("Say hello"), and a token per piece it sends.
    upstream.then(Script(tokens=["Enough", " words."]))
    socket = await visitor()
    await answered(socket, "one")
    row = await Exchange.objects.aget()
    assert (row.prompt_tokens, row.completion_tokens, row.counted_tokens) == (2, 2, 4)

    error = await refused(socket, "two")

    assert error["code"] == "over_token_budget"
    expected = (row.created + timedelta(days=1) - timezone.now()).total_seconds() * 1000
    assert abs(error["retry_after_ms"] - expected) < 60_000
    await socket.close()


async def test_a_cancelled_answer_still_counts_estimated_from_what_was_relayed(upstream, settings):
    upstream.then(Script(tokens=[" word"] * 400, interval=0.01))
    socket = await visitor()
    await socket.send(prompt("Go on at length", request="long"))
    start = await socket.receive()
    await socket.receive_text(" word" * 20)
    await socket.send({"type": "cancel", "stream": start["stream"]})
    frames = await socket.stream_to_end()
    assert frames[-1]["finish_reason"] == "cancelled" and frames[-1]["usage"] is None

    row = await Exchange.objects.aget()
    relayed = row.answer
    assert row.counted_tokens == len("Go on at length") // 4 + budgets.estimated_tokens(len(relayed)) > 0
    settings.STREAMING_TOKENS_PER_DAY = row.counted_tokens
    assert (await refused(socket, "again"))["code"] == "over_token_budget"
    await socket.close()


async def test_an_anonymous_visitor_with_a_new_session_keeps_the_budget_of_its_address(upstream, settings):
    settings.STREAMING_PROMPTS_PER_MINUTE = 1
    first = await visitor(address="198.51.100.4")
    await answered(first, "one")

    again = await visitor(address="198.51.100.4")  # cookies cleared: a new session
    assert (await refused(again, "two"))["code"] == "too_many_prompts"
    elsewhere = await visitor(address="198.51.100.99")
    await answered(elsewhere, "three")

    stored = await database_sync_to_async(list)(Exchange.objects.values_list("address", flat=True))
    assert "198.51.100.4" not in stored and budgets.address_hash("198.51.100.4") in stored
    for socket in (first, again, elsewhere):
        await socket.close()


def unlimited_for_one(*, client) -> Budget:
    """A host's rule: one client (by its group, say) has no limit, the others one prompt a minute."""
    return Budget() if client.key.endswith(UNLIMITED_SUFFIX) else Budget(prompts_per_minute=1)


UNLIMITED_SUFFIX = "-never"


async def test_the_host_sets_each_clients_budget(upstream, settings, monkeypatch):
    settings.STREAMING_BUDGET = "tests.test_budgets.unlimited_for_one"
    limited = await visitor()
    await answered(limited, "one")
    assert (await refused(limited, "two"))["code"] == "too_many_prompts"
    monkeypatch.setattr("tests.test_budgets.UNLIMITED_SUFFIX", "")  # every key ends with "": now no one is limited
    await answered(limited, "three")
    await limited.close()


def test_a_wait_reads_as_a_person_would_say_it():
    assert budgets._in(1_000) == "in 1 second"
    assert budgets._in(42_000) == "in 42 seconds"
    assert budgets._in(150_000) == "in 3 minutes"
    assert budgets._in(5 * 3_600_000) == "in 5 hours"


@pytest.mark.postgresql
def test_two_prompts_at_once_are_counted_one_after_the_other(settings):
    """Two workers admit a prompt of one client at the same moment: the second waits for the first's lock, then sees
    its row. Without the lock it would count the window before the first committed, and both would go."""
    settings.STREAMING_PROMPTS_PER_MINUTE = 1
    client = ChatClient(key="user:1", user_id=1)
    conversation = Conversation.objects.create(client=client.key, title="t")
    first_counted, first_may_commit, second_done = threading.Event(), threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def admit(name: str, counted: threading.Event | None, may_commit: threading.Event | None) -> None:
        try:
            with transaction.atomic():
                budgets.check(client=client, address="", now=timezone.now())
                Exchange.objects.create(
                    conversation=conversation, client=client.key, request=name, model="m", prompt="p"
                )
                if counted:
                    counted.set()
                    may_commit.wait(10)
            outcome[name] = "admitted"
        except TooManyPrompts:
            outcome[name] = "refused"
        finally:
            connections.close_all()
            if name == "second":
                second_done.set()

    first = threading.Thread(target=admit, args=("first", first_counted, first_may_commit))
    first.start()
    assert first_counted.wait(10)
    second = threading.Thread(target=admit, args=("second", None, None))
    second.start()
    # The second is either waiting for the lock (as it should) or done already (no lock): whichever comes first.
    while not second_done.is_set() and not waiting_for_a_lock():
        second_done.wait(0.01)
    first_may_commit.set()
    first.join(10)
    second.join(10)

    assert outcome == {"first": "admitted", "second": "refused"}


def waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0
