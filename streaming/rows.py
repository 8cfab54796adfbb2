"""The log's statements on the way of every prompt and every end, in SQL of the app's own.

A batch of prompts is checked with a few statements and written with two, and every end is one update. Built by the
ORM, each statement cost 0.5 to 1 ms of the database thread's CPU to build and compile, more than PostgreSQL took to
run it, and in a burst that thread's CPU is taken from the event loop that carries the first words (the GIL): a batch
of 20 prompts cost 9 to 11 ms, 5 to 6 here, and a batch of 20 ends 11 to 15 ms, 5 here (docs/performance.md, "The
admission's statements in SQL of their own"). So
these are written once, as text; the columns' names and the values' conversions stay the models' own (`column`,
`get_db_prep_save`), so a change to a field changes them too.

Portable SQL, run by PostgreSQL and SQLite alike, except for new rows: on PostgreSQL they go in with one `INSERT` a
table whose values psycopg binds on the server side, adapting them in C (Django's `bulk_create` quotes every value in
Python); elsewhere with `bulk_create`. Every function runs in the caller's transaction.

In a burst the database thread waits for the GIL after every round trip to PostgreSQL, up to the interpreter's switch
interval (5 ms) while the event loop is busy. So the admission's checks go to PostgreSQL in one round trip (`together`,
psycopg's pipeline mode): `running_streams` and `usage` send their query at once and return what reads its rows, to be
called once every check is sent; so do a batch's ends (`exchange_end`), and its new rows (`insert`, which reads no
reply). A batch of starts thus waits for PostgreSQL four times: `BEGIN`, the checks, the rows, `COMMIT`. (The rows
went in with `COPY` before, two round trips a table that no pipeline can carry, seven in all: a batch of five prompts
held the database thread 77 ms while another thread kept the GIL busy, 59 ms now, medians of six runs.)
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

from streaming.models import Exchange


@contextmanager
def together() -> Iterator[None]:
    """On PostgreSQL, the block's statements in one pipeline: sent without waiting for each other, and their replies
    read together at the block's end (or at the first read of a result inside it). Elsewhere, nothing changes.

    Enter it inside the transaction (psycopg syncs a pipeline, a round trip, before changing the connection's
    autocommit), and run no one else's code in it: a queryset's `iterator()`, say, needs a server-side cursor, which a
    pipeline cannot have.
    """
    db = _db()
    if db.vendor != "postgresql":
        yield
        return
    db.ensure_connection()
    with db.connection.pipeline():
        yield


def running_streams(clients: Collection[str], *, since: datetime) -> Callable[[], Counter[str]]:
    """How many `streaming` rows created since `since` each of these clients has: sent now, read when called."""
    db = _db()
    client, status, created = _columns(db, Exchange, "client", "status", "created")
    read = _send(
        db,
        f"SELECT {client}, COUNT(*) FROM {_table(db, Exchange)} WHERE {client} IN ({_marks(clients)})"
        f" AND {status} = %s AND {created} >= %s GROUP BY {client}",
        [*clients, Exchange.Status.STREAMING.value, _value(db, "created", since)],
    )
    return lambda: Counter(dict(read()))


def usage(
    field: str, keys: Collection[str], *, since: datetime, minute_since: datetime
) -> Callable[[], dict[str, tuple[int, int]]]:
    """Per value of `field` ("client" or "address") among `keys`: the rows created since `minute_since`, and the
    `counted_tokens` of the rows created since `since` (a running answer's is NULL: not counted yet). Sent now, read
    when called."""
    db = _db()
    key, created, tokens = _columns(db, Exchange, field, "created", "counted_tokens")
    read = _send(
        db,
        f"SELECT {key}, SUM(CASE WHEN {created} > %s THEN 1 ELSE 0 END), SUM({tokens})"
        f" FROM {_table(db, Exchange)} WHERE {key} IN ({_marks(keys)}) AND {created} > %s GROUP BY {key}",
        [_value(db, "created", minute_since), *keys, _value(db, "created", since)],
    )
    return lambda: {value: (prompts or 0, used or 0) for value, prompts, used in read()}


def insert(model: type[Model], objects: Iterable[Model]) -> None:
    """Write new rows, as `bulk_create` would (each field's default and `pre_save` applied). On PostgreSQL one
    `INSERT` of all of them, its parameters bound by the server (psycopg adapts them in C), so that inside `together`
    it waits for no reply of its own."""
    objects, db = list(objects), _db()
    if not objects:
        return
    if db.vendor != "postgresql":
        model._default_manager.bulk_create(objects)
        return
    fields = model._meta.concrete_fields
    names = ", ".join(db.ops.quote_name(field.column) for field in fields)
    row = f"({_marks(fields)})"
    params = [field.get_db_prep_save(field.pre_save(instance, True), db) for instance in objects for field in fields]
    db.ensure_connection()
    with psycopg.Cursor(db.connection) as cursor:
        sql = f"INSERT INTO {_table(db, model)} ({names}) VALUES {', '.join([row] * len(objects))}"
        cursor.execute(sql, params, prepare=False)
    for instance in objects:  # as `bulk_create` leaves them: saved, in this database
        instance._state.adding, instance._state.db = False, db.alias


def exchange_end(
    exchange_id: uuid.UUID, values: Mapping[str, object], *, estimate: int, chars_per_token: int
) -> Callable[[], bool]:
    """Set a `streaming` row's fields to `values`: sent now; the function returned tells whether the row was still
    streaming (else nothing changed), so that the ends of a batch can go to the server together (`together`).

    `values["counted_tokens"]` None counts the row as its prompt's length at `chars_per_token` plus `estimate`.
    """
    db = _db()
    names = [name for name in values if name != "counted_tokens"]
    id_, status, prompt, counted = _columns(db, Exchange, "id", "status", "prompt", "counted_tokens")
    assignments = [f"{column} = %s" for column in _columns(db, Exchange, *names)]
    assignments.append(f"{counted} = COALESCE(%s, LENGTH({prompt}) / %s + %s)")
    # In a pipeline the row count is known only once the reply is read: PostgreSQL returns the row to read instead.
    returning = f" RETURNING {id_}" if db.vendor == "postgresql" else ""
    cursor = db.cursor()
    cursor.execute(
        f"UPDATE {_table(db, Exchange)} SET {', '.join(assignments)} WHERE {id_} = %s AND {status} = %s{returning}",
        [
            *(_value(db, name, values[name]) for name in names),
            values.get("counted_tokens"),
            chars_per_token,
            estimate,
            _value(db, "id", exchange_id),
            Exchange.Status.STREAMING.value,
        ],
    )

    def ended() -> bool:
        with cursor:
            return len(cursor.fetchall()) == 1 if returning else cursor.rowcount == 1

    return ended


def _db() -> BaseDatabaseWrapper:
    """The connection itself, not `django.db.connection`, whose every attribute is a thread-local lookup: a field's
    conversion reads it several times per value."""
    return connections[DEFAULT_DB_ALIAS]


def _send(db: BaseDatabaseWrapper, sql: str, params: list[object]) -> Callable[[], list[tuple]]:
    cursor = db.cursor()
    cursor.execute(sql, params)

    def read() -> list[tuple]:
        with cursor:
            return cursor.fetchall()

    return read


def _table(db: BaseDatabaseWrapper, model: type[Model]) -> str:
    return db.ops.quote_name(model._meta.db_table)


def _columns(db: BaseDatabaseWrapper, model: type[Model], *names: str) -> list[str]:
    return [db.ops.quote_name(model._meta.get_field(name).column) for name in names]


def _value(db: BaseDatabaseWrapper, name: str, value: object) -> object:
    """`value` as `Exchange.<name>` sends it to the database (a datetime in UTC text on SQLite, JSON adapted...)."""
    return Exchange._meta.get_field(name).get_db_prep_save(value, db)


def _marks(values: Collection[object]) -> str:
    return ", ".join(["%s"] * len(values))
