"""The log's statements in SQL of the app's own (`streaming.rows`), on whichever database the run uses (CI runs these
on PostgreSQL, where new rows go in with an `INSERT` of the app's own, and on SQLite): what they write and count is
what the ORM would; and on PostgreSQL the admission's checks, a batch's new rows, and a batch's ends, each wait for
the server once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone

from streaming import rows, services
from streaming.clients import Client
from streaming.models import Conversation, Exchange
from streaming.protocol import Prompt
from streaming.relay.ending import Ending
from streaming.relay.transcript import Transcript

pytestmark = pytest.mark.django_db

# What a text format must escape (COPY's, which wrote new rows before), and what a person may well type.
AWKWARD = 'Tab\there, a new line\nand \\N, a backslash \\, "quotes", ünïcödé and 🙂'


def prompt(request: object) -> Prompt:
    return Prompt(request=str(request), content=f"Question {request}?", model="m")


def exchange(conversation: Conversation, **fields: object) -> Exchange:
    return Exchange(
        conversation=conversation,
        client="session:a",
        request="r1",
        model="m",
        prompt=fields.pop("prompt", "What is 2 + 2?"),
        **fields,
    )


def test_a_row_written_by_insert_reads_back_as_the_object_that_was_written():
    conversation = Conversation(client="session:a", title=AWKWARD, settings={"model": "m", "temperature": 0.5})
    written = exchange(conversation, prompt=AWKWARD, parameters={"system": AWKWARD, "max_tokens": 10}, address="")
    with transaction.atomic():
        rows.insert(Conversation, [conversation])
        rows.insert(Exchange, [written])
    assert not written._state.adding  # saved, as `bulk_create` leaves it
    read = Exchange.objects.get(id=written.id)
    for field in Exchange._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(written, field.attname), field.name
    assert read.created is not None and read.status == Exchange.Status.STREAMING
    assert Conversation.objects.get(id=conversation.id).settings == {"model": "m", "temperature": 0.5}


def test_an_end_changes_a_row_only_while_it_streams_and_estimates_what_it_cost_without_usage():
    conversation = Conversation.objects.create(client="session:a", title="t")
    row = Exchange.objects.create(
        conversation=conversation, client="session:a", request="r", model="m", prompt="x" * 40
    )
    now = timezone.now()
    values = {"status": Exchange.Status.COMPLETED, "answer": AWKWARD, "layout": [["d", 1]], "counted_tokens": None}
    assert rows.exchange_end(row.id, {**values, "finished": now}, estimate=3, chars_per_token=4)()
    row.refresh_from_db()
    assert (row.status, row.answer, row.layout, row.finished) == (Exchange.Status.COMPLETED, AWKWARD, [["d", 1]], now)
    assert row.counted_tokens == 40 // 4 + 3  # the prompt at four characters a token, and the estimate
    # Ended already: a second end changes nothing.
    assert not rows.exchange_end(
        row.id, {**values, "answer": "other", "counted_tokens": 7}, estimate=0, chars_per_token=4
    )()
    row.refresh_from_db()
    assert (row.answer, row.counted_tokens) == (AWKWARD, 13)


def test_the_counts_take_their_window_and_their_keys_only():
    conversation = Conversation.objects.create(client="session:a", title="t")
    now = timezone.now()

    def logged(client: str, age: timedelta, status: str = Exchange.Status.STREAMING, tokens: int | None = None) -> None:
        row = Exchange.objects.create(
            conversation=conversation, client=client, request=uuid.uuid4().hex, model="m", prompt="p", address="h"
        )
        Exchange.objects.filter(id=row.id).update(created=now - age, status=status, counted_tokens=tokens)

    logged("session:a", timedelta(seconds=10))
    logged("session:a", timedelta(minutes=5), Exchange.Status.COMPLETED, tokens=100)
    logged("session:a", timedelta(hours=2))  # running too long: its worker died
    logged("session:a", timedelta(days=2), Exchange.Status.COMPLETED, tokens=1000)  # out of the day
    logged("session:b", timedelta(seconds=1), Exchange.Status.COMPLETED, tokens=5)
    logged("session:c", timedelta(seconds=1))  # not asked about
    since = now - timedelta(hours=1)
    assert rows.running_streams(["session:a", "session:b"], since=since)() == {"session:a": 1}
    day, minute = now - timedelta(days=1), now - timedelta(minutes=1)
    assert rows.usage("client", ["session:a", "session:b"], since=day, minute_since=minute)() == {
        "session:a": (1, 100),  # one prompt in the minute; the tokens of the day's ended answers
        "session:b": (1, 5),
    }
    assert rows.usage("address", ["h"], since=day, minute_since=minute)() == {"h": (3, 105)}


def traced(run: Callable[[], object], path: Path) -> tuple[object, list[list[str]]]:
    """What `run` returns, and the protocol messages of the connection meanwhile (libpq's trace): each a list of
    time, F(rontend) or B(ackend), length, type and content."""
    connection.ensure_connection()
    with path.open("w") as out:
        connection.connection.pgconn.trace(out.fileno())
        try:
            result = run()
        finally:
            connection.connection.pgconn.untrace()
    return result, [line.split("\t") for line in path.read_text().splitlines()]


def replies_between(messages: list[list[str]], first: str, last: str) -> list[str]:
    """The server's messages after the first statement that contains `first` was sent, before the last that
    contains `last` was: none when they all went in one round trip."""
    sent = [i for i, message in enumerate(messages) if message[1] == "F"]
    start = next(i for i in sent if first in messages[i][-1])
    end = max(i for i in sent if last in messages[i][-1])
    return [message[3] for message in messages[start:end] if message[1] == "B"]


@pytest.mark.postgresql
def test_the_admission_checks_reach_postgresql_in_one_round_trip(settings, tmp_path):
    """Each reply PostgreSQL sends is a wait for the GIL in a burst: the locks, the running streams and both budgets'
    counts are all sent before the first of their replies comes back."""
    settings.STREAMING_PROMPTS_PER_MINUTE, settings.STREAMING_TOKENS_PER_DAY = 1000, 10**9
    arrivals = [services.Arrival(Client(key=f"session:{n}"), prompt(n), address="a") for n in range(3)]
    outcomes, messages = traced(
        lambda: services.exchanges_start(arrivals=arrivals, demo=False, worker="w"), tmp_path / "trace"
    )
    assert all(isinstance(outcome, tuple) for outcome in outcomes)
    # From the locks to the budgets' second count (the addresses'):
    assert replies_between(messages, "pg_advisory_xact_lock", "SUM(CASE") == []


@pytest.mark.postgresql
def test_the_new_rows_of_a_batch_reach_postgresql_in_one_round_trip(tmp_path):
    """Each reply is a wait for the GIL in a burst, and the next prompts' checks wait for this batch's `COMMIT`: with
    `COPY`, each table's rows took two round trips."""
    arrivals = [services.Arrival(Client(key=f"session:{n}"), prompt(n)) for n in range(3)]
    outcomes, messages = traced(
        lambda: services.exchanges_start(arrivals=arrivals, demo=False, worker="w"), tmp_path / "trace"
    )
    assert all(isinstance(outcome, tuple) for outcome in outcomes)
    assert Exchange.objects.filter(id__in=[exchange.id for exchange, _ in outcomes]).count() == 3
    conversations, exchanges = Conversation._meta.db_table, Exchange._meta.db_table
    # From the statement that writes the conversations' rows to the one that writes the exchanges':
    assert replies_between(messages, f'"{conversations}" (', f'"{exchanges}" (') == []


@pytest.mark.postgresql
def test_the_ends_of_a_batch_reach_postgresql_in_one_round_trip(tmp_path):
    """Each end's update used to wait for its reply before the next was sent: a batch of ends held the database
    thread, which admits the next prompts, for a round trip per stream."""
    (first, _), (second, _), (third, _) = services.exchanges_start(
        arrivals=[services.Arrival(Client(key="session:a"), prompt(n)) for n in range(3)], demo=False, worker="w"
    )
    Exchange.objects.filter(id=third.id).update(status=Exchange.Status.INTERRUPTED)  # a sweep ended it already
    ending = Ending.of(error=None, finish_reason="stop", last_seq=1, duration_ms=5, usage=None)
    finishes = [services.Finish(row.id, ending, Transcript()) for row in (first, second, third)]
    ended, messages = traced(lambda: services.exchanges_finish(finishes=finishes), tmp_path / "trace")
    assert ended == [True, True, False]
    updates = [message for message in messages if message[1] == "F" and "UPDATE" in message[-1]]
    assert len(updates) == 3
    assert replies_between(messages, "UPDATE", "UPDATE") == []
