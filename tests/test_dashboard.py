"""The staff dashboard: only staff who may view the log see it, and its figures, aggregated in the database, are right
on a small known log, soft-deleted conversations included (the log keeps them and their usage did happen)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from streaming import dashboard
from streaming.models import Conversation, Exchange, ToolCall

pytestmark = pytest.mark.django_db

URL = "admin:streaming_exchange_dashboard"
VISITOR = "session:" + "ab12" * 16


def exchange(conversation: Conversation, created: datetime, **fields: Any) -> Exchange:
    row = Exchange.objects.create(
        conversation=conversation,
        client=conversation.client,
        user=conversation.user,
        request="r",
        prompt="p",
        **{"status": Exchange.Status.COMPLETED, **fields},
    )
    Exchange.objects.filter(pk=row.pk).update(created=created)  # `created` is auto_now_add
    return row


def tool_call(row: Exchange, position: int, name: str, status: str) -> None:
    ToolCall.objects.create(exchange=row, position=position, round=1, call_id=f"c{position}", name=name, status=status)


@pytest.fixture
def now() -> datetime:
    return timezone.now()


@pytest.fixture
def log(now: datetime) -> None:
    """Ada's three exchanges over two days, a visitor's two today in a conversation they deleted, and one of Ada's
    from before the window, whose every figure would show if it were counted."""
    ada = User.objects.create_user("ada")
    hers = Conversation.objects.create(client=f"user:{ada.pk}", user=ada, title="Hers")
    gone = Conversation.objects.create(client=VISITOR, title="Deleted", deleted=now)
    first = exchange(
        hers, now - timedelta(days=1), model="small", ttft_ms=100, prompt_tokens=10, completion_tokens=20,
        counted_tokens=30,
    )  # fmt: skip
    exchange(hers, now - timedelta(days=1), model="small", ttft_ms=200, prompt_tokens=5, completion_tokens=5)
    exchange(
        hers, now - timedelta(days=2), model="small", ttft_ms=400, status=Exchange.Status.FAILED,
        error_code="upstream_error", counted_tokens=7,
    )  # fmt: skip
    large = exchange(
        gone, now, model="large", ttft_ms=1000, prompt_tokens=100, completion_tokens=200, counted_tokens=300
    )
    exchange(gone, now, model="large", status=Exchange.Status.CANCELLED, counted_tokens=50)
    old = exchange(
        hers, now - timedelta(days=40), model="small", ttft_ms=9999, status=Exchange.Status.FAILED,
        error_code="timeout", prompt_tokens=1000, completion_tokens=1000,
    )  # fmt: skip
    tool_call(first, 1, "clock", ToolCall.Status.DONE)
    tool_call(first, 2, "clock", ToolCall.Status.FAILED)
    tool_call(large, 1, "search", ToolCall.Status.DONE)
    tool_call(large, 2, "search", ToolCall.Status.STOPPED)
    tool_call(old, 1, "clock", ToolCall.Status.DONE)


def day(now: datetime, days_ago: int) -> str:
    return (timezone.localdate(now) - timedelta(days=days_ago)).isoformat()


def test_the_figures_of_a_known_log_deleted_conversations_counted(log, now):
    figures = dashboard.dashboard_figures(now=now)

    per_day = figures["per_day"]
    assert (
        len(per_day) == dashboard.WINDOW_DAYS
        and per_day[0]["day"] == day(now, 29)
        and per_day[-1]["day"] == day(now, 0)
    )
    assert per_day[-3:] == [
        {"day": day(now, 2), "exchanges": 1, "prompt_tokens": 0, "completion_tokens": 0},
        {"day": day(now, 1), "exchanges": 2, "prompt_tokens": 15, "completion_tokens": 25},
        {"day": day(now, 0), "exchanges": 2, "prompt_tokens": 100, "completion_tokens": 200},
    ]
    assert sum(row["exchanges"] for row in per_day) == 5
    assert figures["ttft"] == [
        {"model": "large", "answers": 1, "p50": 1000.0, "p95": 1000.0},
        {"model": "small", "answers": 3, "p50": 200.0, "p95": 380.0},  # 200 + 0.9 * (400 - 200)
    ]
    assert figures["errors"] == [{"code": "upstream_error", "exchanges": 1}]
    assert figures["clients"] == [
        {"client": VISITOR, "user": None, "tokens": 350, "exchanges": 2},  # counted, the cancelled one too
        {"client": f"user:{User.objects.get().pk}", "user": "ada", "tokens": 47, "exchanges": 3},  # 30 + 5 + 5 + 7
    ]
    assert figures["tools"] == [
        {"tool": "clock", "calls": 2, "done": 1, "failed": 1, "stopped": 0},
        {"tool": "search", "calls": 2, "done": 1, "failed": 0, "stopped": 1},
    ]


def test_each_figure_is_one_query_the_clients_two_for_their_names(log, now):
    since = dashboard.dashboard_since(now=now)
    for selector in dashboard.SELECTORS.values():
        with CaptureQueriesContext(connection) as queries:
            selector(since=since)
        assert len(queries) == (2 if selector is dashboard.clients_heaviest else 1), selector.__name__


@pytest.mark.postgresql
def test_postgresql_computes_the_percentiles_itself(log, now):
    with CaptureQueriesContext(connection) as queries:
        ttft = dashboard.ttft_percentiles_per_model(since=dashboard.dashboard_since(now=now))
    assert "percentile_cont(0.5) WITHIN GROUP" in queries[0]["sql"]
    assert ttft[1] == {"model": "small", "answers": 3, "p50": 200.0, "p95": 380.0}


def test_the_python_percentile_interpolates_as_postgresql_does():
    assert dashboard.percentile_cont([], 0.5) is None
    assert dashboard.percentile_cont([7], 0.95) == 7
    assert dashboard.percentile_cont([1, 2, 3, 4], 0.5) == 2.5
    assert dashboard.percentile_cont([1, 2, 3, 4], 0.95) == pytest.approx(3.85)  # SELECT percentile_cont(0.95) …
    with pytest.raises(ValueError):
        dashboard.PercentileCont("ttft_ms", 95)


def test_staff_see_the_charts_and_their_numbers(client, log):
    client.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:streaming_exchange_changelist")).content.decode()
    assert f'href="{reverse(URL)}"' in listing

    page = client.get(reverse(URL))
    assert page.status_code == 200
    html = page.content.decode()
    figures = json.loads(html.split('<script id="dashboard-figures" type="application/json">')[1].split("</script>")[0])
    assert figures["clients"][0]["label"] == "session:ab12ab12ab12…"  # as the log's lists show a visitor
    assert figures["clients"][1]["label"] == "ada"
    assert html.count("<canvas data-chart=") == 6 and html.count('aria-labelledby="chart-') == 6
    assert '<th scope="row">session:ab12ab12ab12…</th><td>350</td><td>2</td>' in html
    assert '<th scope="row">small</th><td>3</td><td>200.0</td><td>380.0</td>' in html
    assert "deleted are counted" in html
    assert "/static/streaming/assets/dashboard-" in html or "bundle-missing" in html


def test_an_empty_log_says_so_instead_of_drawing(client):
    client.force_login(User.objects.create_user("staff", is_staff=True, is_superuser=True))
    html = client.get(reverse(URL)).content.decode()
    assert "No errors." in html and "No tool calls." in html and html.count("<canvas data-chart=") == 2


def test_only_staff_who_may_view_the_log_see_the_dashboard(client):
    login = reverse("admin:login")
    assert client.get(reverse(URL)).url.startswith(login)  # anonymous
    client.force_login(User.objects.create_user("visitor"))
    assert client.get(reverse(URL)).url.startswith(login)  # not staff
    staff = User.objects.create_user("staff", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(URL)).status_code == 403  # staff, but not allowed to view exchanges
    staff.user_permissions.add(Permission.objects.get(codename="view_exchange"))
    assert client.get(reverse(URL)).status_code == 200
