"""The staff dashboard in a real browser: a staff member logs in to the admin, goes from the exchanges' list to the
dashboard, and sees its charts drawn, each with its numbers for a screen reader.

The server's log is seeded before it starts (`prepare`): a user's three answers and a failure today, in a conversation
they deleted, with two tool calls, so every chart has something to draw and the figures are known.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import scripted_daphne
from tests.live import ROOT, Daphne, FakeOpenAIThread

pytestmark = pytest.mark.e2e

USERNAME, PASSWORD = "root", "a-long-password-1"
SEED = f"""
from django.contrib.auth.models import User
from django.utils import timezone
from streaming.models import Conversation, Exchange, ToolCall
User.objects.create_superuser({USERNAME!r}, password={PASSWORD!r})
ada = User.objects.create_user("ada")
gone = Conversation.objects.create(client=f"user:{{ada.pk}}", user=ada, title="Gone", deleted=timezone.now())
def row(**fields):
    return Exchange.objects.create(conversation=gone, client=gone.client, user=ada, request="r", prompt="p",
                                   model="fake-model", **fields)
first = row(status="completed", ttft_ms=100, prompt_tokens=10, completion_tokens=20)
row(status="completed", ttft_ms=200, prompt_tokens=10, completion_tokens=20)
row(status="completed", ttft_ms=400, prompt_tokens=10, completion_tokens=20)
row(status="failed", error_code="upstream_error")
ToolCall.objects.create(exchange=first, position=1, round=1, call_id="a", name="current_time", status="done")
ToolCall.objects.create(exchange=first, position=2, round=1, call_id="b", name="current_time", status="failed")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAIThread) -> Iterator[Daphne]:
    """Replaces conftest's server: one superuser, and a log seeded with known exchanges."""

    def seed(env: dict[str, str]) -> None:
        subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], env=env, cwd=ROOT, check=True)

    with scripted_daphne(tmp_path_factory, "dashboard", upstream, prepare=seed) as daphne:
        yield daphne


def test_staff_see_the_charts_drawn_and_their_numbers_for_screen_readers(page: Page) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/admin/streaming/exchange/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    charts = page.locator("canvas[data-chart]")
    expect(charts).to_have_count(6)
    for name in ["exchanges", "tokens", "ttft", "errors", "clients", "tools"]:
        canvas = page.locator(f'canvas[data-chart="{name}"]')
        # Chart.js sizes the canvas to its box when it draws: an undrawn canvas keeps HTML's 300 x 150 attributes.
        expect(canvas).not_to_have_attribute("width", "300")
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0, name
        label = canvas.get_attribute("aria-labelledby")
        assert page.locator(f"#{label}").inner_text().strip(), name
    assert page.get_by_role("img", name="Time to first token").count() == 1

    def summary(name: str) -> str:
        return page.locator(f'table[data-summary="{name}"]').text_content() or ""

    assert "4" in summary("exchanges")
    assert "fake-model" in summary("ttft") and "200.0" in summary("ttft") and "380.0" in summary("ttft")
    assert "upstream_error" in summary("errors")
    assert "ada" in summary("clients") and "90" in summary("clients")  # three answers of 30 tokens
    assert "current_time" in summary("tools")
    assert errors == []
