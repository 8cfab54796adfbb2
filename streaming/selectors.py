"""Reads of the exchange log, always scoped to the client that asks."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from openai.types.chat import ChatCompletionMessageParam

from streaming.clients import Client
from streaming.errors import NotFound
from streaming.models import Conversation, Exchange, ToolCall
from streaming.tool_calls import ECHOED_REASONING_FIELD, Answered, round_messages
from streaming.tool_outcome import DONE, FAILED, STOPPED, Outcome

CONVERSATIONS_LISTED = 100
SEARCH_WORDS = 8  # words of a query matched without full-text search: each one is a scan of the client's rows


def conversation_turns(*, conversation: Conversation) -> list[ChatCompletionMessageParam]:
    """The earlier turns the model sees when a conversation continues: each question, the tool calls made to
    answer it with their results, where they were made, and the answer. Never the reasoning: models are not asked
    to read their own thinking again, and some refuse it.

    Exchanges still streaming, and those that produced no answer at all, are left out: the model would otherwise
    see a question with no reply.
    """
    turns: list[ChatCompletionMessageParam] = []
    earlier = (
        conversation.exchanges.exclude(status=Exchange.Status.STREAMING)
        .exclude(answer="")
        .order_by("created")
        .only("prompt", "answer", "reasoning", "reasoning_field")
        .prefetch_related("tool_calls")
    )
    for exchange in earlier:
        turns.append({"role": "user", "content": exchange.prompt})
        turns.extend(_answer_messages(exchange))
    return turns


def _answer_messages(exchange: Exchange) -> list[ChatCompletionMessageParam]:
    """The assistant's side of one exchange as the API expects it: the text it wrote before each round of tool
    calls, with the calls, a `tool` message per call, and the rest of the answer."""
    messages: list[ChatCompletionMessageParam] = []
    written = reasoned = 0
    echoed = exchange.reasoning_field == ECHOED_REASONING_FIELD  # the one exception to "never the reasoning"
    for calls in _rounds(exchange):
        text = exchange.answer[written : calls[0].answer_offset]
        reasoning = exchange.reasoning[reasoned : calls[0].reasoning_offset] if echoed else None
        written, reasoned = calls[0].answer_offset, calls[0].reasoning_offset
        answered = [Answered(c.call_id, c.name, c.arguments, _result_for_model(c)) for c in calls]
        messages.extend(round_messages(text=text, calls=answered, reasoning=reasoning))  # type: ignore[arg-type]
    if rest := exchange.answer[written:]:
        messages.append({"role": "assistant", "content": rest})
    return messages


def _rounds(exchange: Exchange) -> list[list[ToolCall]]:
    """The exchange's tool calls (prefetched, in order), one list per round of the model's."""
    return [list(calls) for _, calls in itertools.groupby(exchange.tool_calls.all(), key=lambda c: c.round)]


def _result_for_model(call: ToolCall) -> str:
    if call.status == ToolCall.Status.STOPPED:
        return STOPPED.for_model()
    status = DONE if call.status == ToolCall.Status.DONE else FAILED
    return Outcome(status, call.result, call.error_code, call.error_message).for_model()


def conversation_list(*, client: Client) -> list[dict[str, Any]]:
    conversations = Conversation.objects.filter(client=client.key).order_by("-updated")[:CONVERSATIONS_LISTED]
    return [
        {"id": str(c.id), "title": c.title, "updated": c.updated.isoformat()}
        for c in conversations.only("id", "title", "updated")
    ]


def conversation_detail(*, client: Client, conversation_id: uuid.UUID) -> dict[str, Any]:
    conversation = Conversation.objects.filter(id=conversation_id, client=client.key).first()
    if conversation is None:
        raise NotFound("There is no such conversation.")
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "exchanges": [
            _exchange_as_dict(e) for e in conversation.exchanges.order_by("created").prefetch_related("tool_calls")
        ],
    }


def _exchange_as_dict(exchange: Exchange) -> dict[str, Any]:
    error = {"code": exchange.error_code, "message": exchange.error_message} if exchange.error_code else None
    return {
        "stream": str(exchange.id),
        "prompt": exchange.prompt,
        "answer": exchange.answer,
        "reasoning": exchange.reasoning,
        "parts": answer_parts(exchange),
        "status": exchange.status,
        "finish_reason": exchange.finish_reason or None,
        "model": exchange.model,
        "ttft_ms": exchange.ttft_ms,
        "first_output_ms": exchange.first_output_ms,
        "duration_ms": exchange.duration_ms,
        "usage": exchange.usage(),
        "error": error,
        "last_seq": exchange.last_seq,
        "created": exchange.created.isoformat(),
    }


def answer_parts(exchange: Exchange) -> list[dict[str, Any]]:
    """What the page shows of an answer, in order: per round of the model's, its reasoning, its text and its tool
    calls; then the reasoning and text of its last response. The `text` parts together are the answer."""
    parts: list[dict[str, Any]] = []
    reasoned = written = 0
    for calls in _rounds(exchange):
        parts.extend(_texts(exchange, reasoned, calls[0].reasoning_offset, written, calls[0].answer_offset))
        reasoned, written = calls[0].reasoning_offset, calls[0].answer_offset
        parts.extend(_tool_part(call) for call in calls)
    parts.extend(_texts(exchange, reasoned, len(exchange.reasoning), written, len(exchange.answer)))
    return parts


def _texts(
    exchange: Exchange, reasoned: int, reasoning_end: int, written: int, answer_end: int
) -> list[dict[str, Any]]:
    parts = []
    if reasoning := exchange.reasoning[reasoned:reasoning_end]:
        parts.append({"kind": "reasoning", "text": reasoning})
    if text := exchange.answer[written:answer_end]:
        parts.append({"kind": "text", "text": text})
    return parts


def _tool_part(call: ToolCall) -> dict[str, Any]:
    error = {"code": call.error_code, "message": call.error_message} if call.error_code else None
    return {
        "kind": "tool",
        "call": call.call_id,
        "name": call.name,
        "arguments": call.arguments,
        "status": call.status,
        "result": call.result if call.status == ToolCall.Status.DONE else None,
        "error": error,
        "duration_ms": call.duration_ms,
    }


def streaming_exchanges(*, not_of_worker: str) -> list[tuple[uuid.UUID, str, str, datetime]]:
    """(id, client, worker, created) of every stream logged as running on another worker."""
    return list(
        Exchange.objects.filter(status=Exchange.Status.STREAMING)
        .exclude(worker=not_of_worker)
        .values_list("id", "client", "worker", "created")
    )


def exchange_of_client(*, client: Client, stream: uuid.UUID) -> Exchange:
    exchange = Exchange.objects.filter(id=stream, client=client.key).first()
    if exchange is None:
        raise NotFound("There is no such stream.")
    return exchange


def exchange_search(*, client: Client, query: str, limit: int) -> list[Exchange]:
    """The client's own ended exchanges that match `query`, at most `limit`, with their conversations.

    On PostgreSQL a full-text search of prompt and answer (web-search syntax: words, "a phrase", -not), best ranked
    first; elsewhere each of its words (the first `SEARCH_WORDS`) as a case-insensitive substring of either, newest
    first. Streams still running are left out: their answer is not written yet, and the stream asking is one of
    them.
    """
    query = query.strip()
    if not query or limit < 1:
        return []
    ended = (
        Exchange.objects.filter(client=client.key)
        .exclude(status=Exchange.Status.STREAMING)
        .select_related("conversation")
    )
    found = full_text_match(ended, query) if connection.vendor == "postgresql" else every_word_match(ended, query)
    return list(found[:limit])


def full_text_match(exchanges: QuerySet[Exchange], query: str) -> QuerySet[Exchange]:
    """PostgreSQL's full-text search of prompt and answer, best ranked first."""
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    document, words = SearchVector("prompt", "answer"), SearchQuery(query, search_type="websearch")
    matched = exchanges.annotate(document=document, rank=SearchRank(document, words)).filter(document=words)
    return matched.order_by("-rank", "-created")


def every_word_match(exchanges: QuerySet[Exchange], query: str) -> QuerySet[Exchange]:
    """Each word of the query anywhere in the prompt or the answer, newest first: for any database."""
    for word in query.split()[:SEARCH_WORDS]:
        exchanges = exchanges.filter(Q(prompt__icontains=word) | Q(answer__icontains=word))
    return exchanges.order_by("-created")
