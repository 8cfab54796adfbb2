"""Per-client budgets: prompts per minute and tokens per day, counted from the log itself.

Why the log: every accepted prompt is already a row, written by whichever worker took it, in the same transaction
that checks the budget (on PostgreSQL under a lock per client, so that two prompts at once are counted one after the
other). Counting rows in a window needs no counter to keep in step across workers, and there is nothing to repair
after a crash: a worker that dies leaves a row (which the sweep ends), never a counter stuck high,
and a window expires by itself. An answer counts what the model reported it used over all its rounds
(`Exchange.counted_tokens`), or, when it reported nothing (cancelled, cut off, interrupted), an estimate from what
was relayed, at `CHARS_PER_TOKEN`.

A logged-in user is counted as one client. An anonymous visitor is counted by session and also by the address it
asks from, so that a new session is not a new budget (behind a proxy, daphne needs `--proxy-headers` to see the
address). How far a client can overshoot: the tokens of answers still running are not known until they end, so a
client may go over its daily budget by at most its running streams (`STREAMING_MAX_STREAMS`) times their
`max_tokens`.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import QuerySet, Sum
from django.utils.module_loading import import_string

from streaming.clients import Client
from streaming.conf import app_settings
from streaming.errors import OverTokenBudget, TooManyPrompts
from streaming.models import Exchange

CHARS_PER_TOKEN = 4  # as the history budget counts (streaming.relay.history)
MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)


@dataclass(frozen=True)
class Budget:
    """A client's limits; None is no limit."""

    prompts_per_minute: int | None = None
    tokens_per_day: int | None = None


def budget_for(client: Client) -> Budget:
    """The host's rule (`STREAMING_BUDGET`, `(*, client) -> Budget`, say by group), or else the two settings."""
    if app_settings.BUDGET is not None:
        return _host_rule(app_settings.BUDGET)(client=client)
    return Budget(app_settings.PROMPTS_PER_MINUTE, app_settings.TOKENS_PER_DAY)


@functools.cache
def _host_rule(path: str) -> object:
    return import_string(path)


def address_hash(address: str | None) -> str:
    """What the log keeps of an address: its SHA-256, never the address."""
    return hashlib.sha256(address.encode()).hexdigest() if address else ""


def check(*, client: Client, address: str, now: datetime) -> None:
    """Refuse a prompt the client's budget does not allow; call it in the transaction that records the prompt.

    `address` is `address_hash` of where the prompt came from ("" when unknown).

    Raises:
        TooManyPrompts, OverTokenBudget: with `retry_after_ms`, the earliest the client may try again.
    """
    budget = budget_for(client)
    if budget.prompts_per_minute is None and budget.tokens_per_day is None:
        return
    _take_turns(client, address)
    for rows in _counted_rows(client, address):
        if budget.prompts_per_minute is not None:
            _check_prompts(rows, budget.prompts_per_minute, now)
        if budget.tokens_per_day is not None:
            _check_tokens(rows, budget.tokens_per_day, now)


def _take_turns(client: Client, address: str) -> None:
    """On PostgreSQL, the prompts of one client (and of one anonymous address) are admitted one at a time, whichever
    worker takes them: a lock held to the end of the transaction, so that two prompts at once cannot both be counted
    under the limit. SQLite is one process's database, whose writes are one at a time anyway."""
    if connection.vendor != "postgresql":
        return
    keys = sorted({client.key, *([f"address:{address}"] if client.user_id is None and address else [])})
    with connection.cursor() as cursor:
        for key in keys:  # always in the same order, so that two prompts never wait for each other's lock
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_id(key)])


def _lock_id(key: str) -> int:
    """A signed 64-bit number for the key, as PostgreSQL's advisory locks take."""
    return int.from_bytes(hashlib.sha256(f"streaming.budgets:{key}".encode()).digest()[:8], "big", signed=True)


def _counted_rows(client: Client, address: str) -> list[QuerySet[Exchange]]:
    own = Exchange.objects.filter(client=client.key)
    if client.user_id is None and address:
        return [own, Exchange.objects.filter(address=address)]
    return [own]


def _check_prompts(rows: QuerySet[Exchange], limit: int, now: datetime) -> None:
    recent = rows.filter(created__gt=now - MINUTE)
    count = recent.count()
    if count < limit:
        return
    # One more may go once the oldest `count - limit + 1` of them have left the window.
    leaving = recent.order_by("created").values_list("created", flat=True)[count - limit]
    wait = _ms_until(leaving + MINUTE, now)
    raise TooManyPrompts(
        f"You have sent {limit} prompts in the last minute. Try again {_in(wait)}.", retry_after_ms=wait
    )


def _check_tokens(rows: QuerySet[Exchange], limit: int, now: datetime) -> None:
    today = rows.filter(created__gt=now - DAY, counted_tokens__isnull=False)
    used = today.aggregate(used=Sum("counted_tokens"))["used"] or 0
    if used < limit:
        return
    # The budget frees up as answers leave the window, oldest first; the sum is over these rows, so it gets there.
    frees_up = now + DAY
    for created, tokens in today.order_by("created").values_list("created", "counted_tokens").iterator():
        used -= tokens
        if used < limit:
            frees_up = created + DAY
            break
    wait = _ms_until(frees_up, now)
    raise OverTokenBudget(
        f"You have used today's budget of {limit:,} tokens. Try again {_in(wait)}.", retry_after_ms=wait
    )


def estimated_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def _ms_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds() * 1000))


def _in(ms: int) -> str:
    """A wait in the words a person reads: "in 42 seconds", "in 3 minutes", "in 5 hours"."""
    seconds = math.ceil(ms / 1000)
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= 2 * size:
            return f"in {math.ceil(seconds / size)} {unit}s"
    return f"in {seconds} second{'s' if seconds != 1 else ''}"
