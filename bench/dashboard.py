"""The staff dashboard's queries on a generated log of a million exchanges, in PostgreSQL (docs/performance.md).

    python -m bench.dashboard [--rows 1000000] [--days 60] [--server postgres://postgres@127.0.0.1:5432/postgres]

Creates a database of its own (`dashboard_bench`) on the server, migrates it, fills it with `bulk_create` in batches
(exchanges spread evenly over `--days` days, so the dashboard's 30-day window holds half of them at the default;
2,000 clients, three models, 3% errors, a tool call for every fifth exchange), analyses it, times each selector of
`streaming.dashboard` (the median of 3 runs after one to warm the cache) without the dashboard's indexes (migration
0008) and again with them, and drops the database again.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

import psycopg

DATABASE = "dashboard_bench"
BATCH = 10_000
MODELS = ["gpt-small", "gpt-large", "reasoner"]
ERRORS = ["upstream_error", "upstream_timeout", "cancelled_upstream", "rate_limited"]
TOOLS = ["current_time", "search_history", "calculator", "weather"]
# Rows as wide as a log's: a prompt, an answer and its layout (under PostgreSQL's 2 kB, so kept in the row itself).
PROMPT = "How does the dashboard stay fast on a million rows? " * 5
ANSWER = "By aggregating in the database, over an index that holds what it needs. " * 16
LAYOUT = [["text", 40], ["tool", 0], ["text", 60]]


def server_connection(server: str) -> psycopg.Connection:
    return psycopg.connect(server, autocommit=True)


def generate(rows: int, days: int) -> None:
    """`rows` exchanges over the last `days` days, in batches, with their conversations and tool calls."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from streaming.models import Conversation, Exchange, ToolCall

    random.seed(16)
    users = User.objects.bulk_create([User(username=f"user{n}") for n in range(200)])
    clients = [(f"user:{user.pk}", user) for user in users]
    clients += [(f"session:{random.getrandbits(256):064x}", None) for _ in range(1800)]
    conversations = Conversation.objects.bulk_create(
        [Conversation(client=client, user=user, title="bench") for client, user in clients]
    )
    # Every tenth conversation was deleted by its client: the dashboard counts its exchanges all the same.
    Conversation.objects.filter(pk__in=[c.pk for c in conversations[::10]]).update(deleted=timezone.now())
    created = Exchange._meta.get_field("created")
    created.auto_now_add = False  # the rows are spread over the past, not all made now
    now, span = timezone.now(), timedelta(days=days).total_seconds()
    started = time.monotonic()
    try:
        for start in range(0, rows, BATCH):
            exchanges, calls = [], []
            for n in range(start, min(start + BATCH, rows)):
                conversation = conversations[n % len(conversations)]
                failed = random.random() < 0.03
                prompt_tokens, completion_tokens = random.randint(10, 2000), random.randint(1, 1500)
                row = Exchange(
                    conversation=conversation,
                    client=conversation.client,
                    user=conversation.user,
                    request=str(n),
                    model=random.choice(MODELS),
                    prompt=PROMPT,
                    answer=ANSWER,
                    layout=LAYOUT,
                    status=Exchange.Status.FAILED if failed else Exchange.Status.COMPLETED,
                    error_code=random.choice(ERRORS) if failed else "",
                    ttft_ms=None if failed else int(random.lognormvariate(6, 0.6)),
                    prompt_tokens=None if failed else prompt_tokens,
                    completion_tokens=None if failed else completion_tokens,
                    counted_tokens=None if failed else prompt_tokens + completion_tokens,
                    created=now - timedelta(seconds=random.random() * span),
                )
                exchanges.append(row)
                if n % 5 == 0:
                    status = random.choice(
                        [ToolCall.Status.DONE] * 8 + [ToolCall.Status.FAILED, ToolCall.Status.STOPPED]
                    )
                    calls.append(
                        ToolCall(
                            exchange=row, position=1, round=1, call_id="c", name=random.choice(TOOLS), status=status
                        )
                    )
            Exchange.objects.bulk_create(exchanges)
            ToolCall.objects.bulk_create(calls)
            if start // BATCH % 10 == 9:
                print(f"  {start + BATCH:>9,} rows, {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        created.auto_now_add = True


def timed(function: Any, **arguments: Any) -> tuple[float, Any]:
    """The median of 3 runs in milliseconds, after one run to warm the cache, and what the function returned."""
    result = function(**arguments)
    runs = []
    for _ in range(3):
        began = time.perf_counter()
        result = function(**arguments)
        runs.append((time.perf_counter() - began) * 1000)
    return statistics.median(runs), result


def measure() -> list[tuple[str, float]]:
    from django.db import connection

    from streaming import dashboard
    from streaming.models import Exchange, ToolCall

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    since = dashboard.dashboard_since()
    print(
        f"{Exchange.objects.count():,} exchanges ({Exchange.objects.filter(created__gte=since).count():,} in the "
        f"window), {ToolCall.objects.count():,} tool calls",
        file=sys.stderr,
    )
    figures = []
    for selector in dashboard.SELECTORS.values():
        median, _ = timed(selector, since=since)
        figures.append((selector.__name__, median))
    median, _ = timed(dashboard.dashboard_figures)
    figures.append(("dashboard_figures (all five)", median))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432/postgres")
    arguments = parser.parse_args()

    with server_connection(arguments.server) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    os.environ["DATABASE_URL"] = arguments.server.rsplit("/", 1)[0] + f"/{DATABASE}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
    # Not DEBUG, which would keep every query's SQL (the batches' inserts) in memory.
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-dashboard-" + "x" * 40)
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        call_command("migrate", "streaming", "0007", verbosity=0)  # without the dashboard's indexes first
        began = time.monotonic()
        generate(arguments.rows, arguments.days)
        print(f"generated in {time.monotonic() - began:.0f} s", file=sys.stderr)
        without = measure()
        began = time.monotonic()
        call_command("migrate", verbosity=0)
        print(f"migration 0008 (the dashboard's indexes) in {time.monotonic() - began:.1f} s", file=sys.stderr)
        with_indexes = measure()
        print("| query | without 0008 (ms) | with 0008 (ms) |\n|---|---:|---:|")
        for (name, before), (_, after) in zip(without, with_indexes, strict=True):
            print(f"| `{name}` | {before:.0f} | {after:.0f} |")
    finally:
        from django.db import connections

        connections.close_all()
        with server_connection(arguments.server) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")


if __name__ == "__main__":
    main()
