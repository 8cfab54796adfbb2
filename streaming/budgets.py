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
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from streaming import rows
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
    take_turns(counted_keys(client, address))
    Ledger.read([(client, address)], now=now).admit(client, address)


class Ledger:
    """What the clients of a batch of prompts have used, read in one query per limit for the whole batch, and the
    prompts of the batch admitted so far: a burst of prompts is checked in a few queries, not a few per prompt.

    In the transaction that records the batch: build it with `of`; after `take_turns`, `send` its queries and call
    what that returns to read them (`read` does all three at once); then `admit` each prompt in order: the batch's
    earlier prompts count against the later ones, as rows would.
    """

    def __init__(self, now: datetime, budgets: dict[str, Budget], keys: list[str]) -> None:
        self.now = now
        self.budgets = budgets  # by client key, for the clients that have limits
        self.keys = keys  # the counted keys of those clients, whose usage `send` asks for
        self.prompts: Counter[str] = Counter()  # by counted key: prompts in the last minute, this batch's included
        self.tokens: Counter[str] = Counter()  # by counted key: tokens of the last day

    @classmethod
    def read(cls, requests: Collection[tuple[Client, str]], *, now: datetime) -> Ledger:
        """The usage of every limited client (and anonymous address) among `requests`, `(client, address)` pairs."""
        ledger = cls.of(requests, now=now)
        ledger.send()()
        return ledger

    @classmethod
    def of(cls, requests: Collection[tuple[Client, str]], *, now: datetime) -> Ledger:
        """The budgets of the limited clients among `requests`, their usage not read yet. The host's rule is asked
        here, outside any pipeline: it may read the database as it likes."""
        budgets = {client.key: budget_for(client) for client, _ in requests}
        limited = {key: budget for key, budget in budgets.items() if budget != Budget()}
        keys = {key for client, address in requests if client.key in limited for key in counted_keys(client, address)}
        return cls(now, limited, sorted(keys))

    def send(self) -> Callable[[], None]:
        """Ask for the usage of every counted key; the function returned reads it into the ledger. Whatever is sent
        before that call shares its round trip in a pipeline (`rows.together`)."""
        if not self.keys:
            return lambda: None
        tokens = any(budget.tokens_per_day is not None for budget in self.budgets.values())
        read = _per_key(self.keys, since=self.now - (DAY if tokens else MINUTE), now=self.now)

        def count() -> None:
            for key, (prompts, used) in read().items():
                self.prompts[key], self.tokens[key] = prompts, used

        return count

    def admit(self, client: Client, address: str) -> None:
        """Count one more prompt of `client`, or refuse it (nothing is counted then).

        Raises:
            TooManyPrompts, OverTokenBudget: with `retry_after_ms`, the earliest the client may try again.
        """
        budget = self.budgets.get(client.key)
        if budget is None:
            return
        keys = counted_keys(client, address)
        for key in keys:
            if budget.prompts_per_minute is not None and self.prompts[key] >= budget.prompts_per_minute:
                _refuse_prompts(key, self.prompts[key], budget.prompts_per_minute, self.now)
            if budget.tokens_per_day is not None and self.tokens[key] >= budget.tokens_per_day:
                _refuse_tokens(key, self.tokens[key], budget.tokens_per_day, self.now)
        for key in keys:
            self.prompts[key] += 1


ADDRESS = "address:"  # the prefix of an anonymous address among the counted keys


def counted_keys(client: Client, address: str) -> list[str]:
    """Who a prompt counts against: its client, and an anonymous client's address too."""
    return [client.key, *([ADDRESS + address] if client.user_id is None and address else [])]


def _rows_of(key: str) -> QuerySet[Exchange]:
    if key.startswith(ADDRESS):
        return Exchange.objects.filter(address=key.removeprefix(ADDRESS))
    return Exchange.objects.filter(client=key)


def _per_key(keys: list[str], *, since: datetime, now: datetime) -> Callable[[], dict[str, tuple[int, int]]]:
    """Each counted key's prompts of the last minute and tokens since `since`: one query for the clients, one for
    the anonymous addresses, both sent now, read when called."""
    clients = [key for key in keys if not key.startswith(ADDRESS)]
    addresses = [key.removeprefix(ADDRESS) for key in keys if key.startswith(ADDRESS)]
    reads = [
        (prefix, rows.usage(field, values, since=since, minute_since=now - MINUTE))
        for field, prefix, values in (("client", "", clients), ("address", ADDRESS, addresses))
        if values
    ]
    return lambda: {prefix + value: counts for prefix, read in reads for value, counts in read().items()}


def take_turns(keys: Iterable[str]) -> None:
    """On PostgreSQL, the prompts of one client (and of one anonymous address, see `counted_keys`) are admitted one
    transaction at a time, whichever worker takes them: locks held to the end of the transaction, so that two prompts
    at once cannot both be counted under a limit (a budget, or `STREAMING_MAX_STREAMS`). Taken in one statement in
    sorted order, so that two batches never wait for each other's locks. SQLite is one process's database, whose
    writes are one at a time anyway."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(id) FROM unnest(%s::bigint[]) AS k(id)",
            [[_lock_id(key) for key in sorted(set(keys))]],
        )


def _lock_id(key: str) -> int:
    """A signed 64-bit number for the key, as PostgreSQL's advisory locks take."""
    return int.from_bytes(hashlib.sha256(f"streaming.budgets:{key}".encode()).digest()[:8], "big", signed=True)


def _refuse_prompts(key: str, count: int, limit: int, now: datetime) -> None:
    # One more may go once the oldest `count - limit + 1` of them have left the window. Prompts of this batch are
    # not rows yet: they are the newest, and leave last.
    logged = list(_rows_of(key).filter(created__gt=now - MINUTE).order_by("created").values_list("created", flat=True))
    times = logged + [now] * (count - len(logged))
    wait = _ms_until(times[count - limit] + MINUTE, now)
    raise TooManyPrompts(
        f"You have sent {limit} prompts in the last minute. Try again {_in(wait)}.", retry_after_ms=wait
    )


def _refuse_tokens(key: str, used: int, limit: int, now: datetime) -> None:
    # The budget frees up as answers leave the window, oldest first; the sum is over these rows, so it gets there.
    today = _rows_of(key).filter(created__gt=now - DAY, counted_tokens__isnull=False)
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
