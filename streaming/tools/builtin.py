"""The two tools that come with the app, and that `STREAMING_TOOLS` lists by default."""

from __future__ import annotations

from typing import Annotated, Any

from django.utils import timezone
from pydantic import Field

from streaming import selectors
from streaming.tools import Caller, tool

ANSWER_CHARS = 500  # of each earlier answer: enough to recognise it, ten of them well within a result's limit
PROMPT_CHARS = 500


@tool(idempotent=True)
def current_time() -> str:
    """The current date, time of day, weekday and time zone. Use it for anything about now, today or this week."""
    zone = timezone.get_default_timezone()  # settings.TIME_ZONE
    now = timezone.localtime(timezone.now(), zone)
    return f"{now.isoformat(timespec='seconds')}, {now:%A}, time zone {zone} ({now.tzname()})"


@tool(idempotent=True)
def search_history(
    query: Annotated[str, Field(min_length=1, max_length=500, description="Words to look for.")],
    limit: Annotated[int, Field(ge=1, le=10, description="How many exchanges to return at most.")] = 5,
    *,
    caller: Caller,
) -> list[dict[str, Any]]:
    """Search the asking person's own earlier conversations with you, best matches first. Use it when they refer to
    something discussed before. Each match has the conversation's title, the date, their prompt and your answer."""
    return [
        {
            "conversation": exchange.conversation.title,
            "date": timezone.localtime(exchange.created, timezone.get_default_timezone()).date().isoformat(),
            "prompt": _cut(exchange.prompt, PROMPT_CHARS),
            "answer": _cut(exchange.answer, ANSWER_CHARS),
        }
        for exchange in selectors.exchange_search(client=caller, query=query, limit=limit)
    ]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
