"""The staff dashboard's figures: what the log says about the last days, aggregated in the database.

Selectors only: each function reads, takes its window keyword-only, and returns plain dicts and lists (JSON as it
stands), so the admin view renders them and the charts draw them without touching a model.

Invariants:
- Every figure covers the exchanges created since `since` (`dashboard_since`: the last `WINDOW_DAYS` days, today
  included, in the current time zone), and a tool call counts by its exchange's time.
- Exchanges of conversations their client deleted are counted: the admin keeps them in the log, and what they cost
  did happen. Nothing here filters on `Conversation.deleted`.
- Tokens per day are the usage the model reported (prompt and completion); the heaviest clients are ranked by what
  their answers cost of their budgets (`counted_tokens`, which estimates an answer cut off before the model reported
  usage), or the reported usage where nothing was counted.
- Time to first token is aggregated in PostgreSQL with `percentile_cont`; SQLite has no percentile, so there the
  sorted values of each model are read and interpolated the same way (`percentile_cont` below), with equal results.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Max, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from streaming.models import Exchange, ToolCall

WINDOW_DAYS = 30
HEAVIEST_CLIENTS = 10


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`: the interpolated percentile."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError(f"a percentile is a fraction from 0 to 1, not {fraction}")
        super().__init__(expression, fraction=float(fraction), **extra)


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """The percentile of sorted `values` as PostgreSQL's `percentile_cont` computes it: linear interpolation between
    the two values around position `fraction * (n - 1)`; None for no values."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    below, above = math.floor(position), math.ceil(position)
    return values[below] + (values[above] - values[below]) * (position - below)


def dashboard_since(*, now: datetime.datetime | None = None, days: int = WINDOW_DAYS) -> datetime.datetime:
    """The start of the window: midnight, in the current time zone, of the first of the last `days` days."""
    today = timezone.localdate(now or timezone.now())
    first = today - datetime.timedelta(days=days - 1)
    return timezone.make_aware(datetime.datetime.combine(first, datetime.time.min))


def _window(since: datetime.datetime) -> Any:
    # No default ordering inside a GROUP BY. The figures count rows with `Count("*")`, never a column the dashboard's
    # index lacks, so that PostgreSQL reads them from the index alone (migration 0008).
    return Exchange.objects.filter(created__gte=since).order_by()


def exchanges_per_day(*, since: datetime.datetime, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """One row per day from `since` to `now`'s day, in order, days without an exchange included: `day` (ISO date),
    `exchanges`, and the `prompt_tokens` and `completion_tokens` the model reported for them."""
    rows = (
        _window(since)
        .annotate(day=TruncDate("created"))
        .values("day")
        .annotate(
            exchanges=Count("*"),
            prompt_tokens=Coalesce(Sum("prompt_tokens"), 0),
            completion_tokens=Coalesce(Sum("completion_tokens"), 0),
        )
    )
    by_day = {row["day"]: row for row in rows}
    first, today = timezone.localdate(since), timezone.localdate(now or timezone.now())
    days = [first + datetime.timedelta(days=n) for n in range((today - first).days + 1)]
    return [
        {
            "day": day.isoformat(),
            "exchanges": by_day.get(day, {}).get("exchanges", 0),
            "prompt_tokens": by_day.get(day, {}).get("prompt_tokens", 0),
            "completion_tokens": by_day.get(day, {}).get("completion_tokens", 0),
        }
        for day in days
    ]


def ttft_percentiles_per_model(*, since: datetime.datetime) -> list[dict[str, Any]]:
    """Per model, by name: how many answers reported a time to first token (`answers`) and its `p50` and `p95` in
    milliseconds (interpolated, so possibly fractional; rounded to 0.1 ms)."""
    timed = _window(since).filter(ttft_ms__isnull=False)
    if connection.vendor == "postgresql":
        rows = list(
            timed.values("model")
            .annotate(answers=Count("*"), p50=PercentileCont("ttft_ms", 0.5), p95=PercentileCont("ttft_ms", 0.95))
            .order_by("model")
        )
    else:
        values: dict[str, list[int]] = {}
        for model, ttft in timed.order_by("model", "ttft_ms").values_list("model", "ttft_ms").iterator():
            values.setdefault(model, []).append(ttft)
        rows = [
            {
                "model": model,
                "answers": len(ttfts),
                "p50": percentile_cont(ttfts, 0.5),
                "p95": percentile_cont(ttfts, 0.95),
            }
            for model, ttfts in values.items()
        ]
    return [{**row, "p50": round(row["p50"], 1), "p95": round(row["p95"], 1)} for row in rows]


def errors_by_code(*, since: datetime.datetime) -> list[dict[str, Any]]:
    """Per error code an exchange ended with (`code`, `exchanges`), the most frequent first."""
    rows = _window(since).exclude(error_code="").values("error_code").annotate(exchanges=Count("*"))
    return [
        {"code": row["error_code"], "exchanges": row["exchanges"]} for row in rows.order_by("-exchanges", "error_code")
    ]


def clients_heaviest(*, since: datetime.datetime, limit: int = HEAVIEST_CLIENTS) -> list[dict[str, Any]]:
    """The `limit` clients whose answers cost the most tokens, heaviest first: `client` (its key), `user` (the
    user's name, or None for an anonymous visitor), `tokens` and `exchanges`. Two queries: the users' names are read
    for the few clients shown, not joined to every row of the window."""
    reported = Coalesce(F("prompt_tokens"), 0) + Coalesce(F("completion_tokens"), 0)
    rows = list(
        _window(since)
        .values("client")
        .annotate(
            user_id=Max("user_id"),  # a client is one user or none
            tokens=Coalesce(Sum(Coalesce(F("counted_tokens"), reported)), 0),
            exchanges=Count("*"),
        )
        .order_by("-tokens", "client")[:limit]
    )
    User = get_user_model()
    ids = {row["user_id"] for row in rows if row["user_id"] is not None}
    names = dict(User.objects.filter(pk__in=ids).values_list("pk", User.USERNAME_FIELD)) if ids else {}
    return [
        {
            "client": row["client"],
            "user": None if row["user_id"] is None else str(names.get(row["user_id"], row["user_id"])),
            "tokens": row["tokens"],
            "exchanges": row["exchanges"],
        }
        for row in rows
    ]


def tool_calls_by_tool(*, since: datetime.datetime) -> list[dict[str, Any]]:
    """Per tool, by name: its calls by how they ended (`done`, `failed`, `stopped`, every status present) and in
    all (`calls`)."""
    statuses = [status for status, _ in ToolCall.Status.choices]
    rows = (
        ToolCall.objects.filter(exchange__created__gte=since)
        .order_by()
        .values("name")
        .annotate(
            calls=Count("id"),
            **{status: Count("id", filter=Q(status=status)) for status in statuses},
        )
        .order_by("name")
    )
    return [{"tool": row.pop("name"), **row} for row in rows]


# Each chart's selector, by the key its figures have in `dashboard_figures` (the benchmark times them one by one).
SELECTORS = {
    "per_day": exchanges_per_day,
    "ttft": ttft_percentiles_per_model,
    "errors": errors_by_code,
    "clients": clients_heaviest,
    "tools": tool_calls_by_tool,
}


def dashboard_figures(*, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Every figure of the dashboard, for the window that ends `now`: `since` (ISO), `days`, and one list per
    chart (`per_day`, `ttft`, `errors`, `clients`, `tools`)."""
    since = dashboard_since(now=now)
    figures: dict[str, Any] = {"since": since.isoformat(), "days": WINDOW_DAYS}
    for key, selector in SELECTORS.items():
        # The days run up to `now`, so that a day with no exchanges is a bar of zero, not a missing one.
        figures[key] = selector(since=since, now=now) if selector is exchanges_per_day else selector(since=since)
    return figures
