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
from streaming.relay.tool_calls import ECHOED_REASONING_FIELD, Answered, round_messages
from streaming.relay.tool_outcome import DONE, FAILED, STOPPED, Outcome

CONVERSATIONS_LISTED = 100
SEARCH_WORDS = 8  # words of a query matched without full-text search: each one is a scan of the client's rows
SEARCH_PAGE = 20  # conversations on a page of the sidebar's search
SNIPPET_BEFORE, SNIPPET_AFTER = 40, 120  # characters of a search result's snippet around the word found


Tree = dict[uuid.UUID, uuid.UUID | None]  # exchange -> the exchange it follows (None: the conversation's first)


def conversation_tree(*, conversation: Conversation) -> Tree:
    """Each exchange of the conversation with its parent, oldest first: the shape of its versions, in one small read."""
    rows = conversation.exchanges.order_by("created").values_list("id", "parent_id")
    return dict(rows)


def path_turns(
    *, tree: dict[uuid.UUID, uuid.UUID | None], parent: uuid.UUID | None
) -> list[ChatCompletionMessageParam]:
    """The earlier turns the model sees when a prompt follows `parent`: the exchanges on the path from the
    conversation's first one down to `parent`, never the versions beside it. Each turn is the question, the tool
    calls made to answer it with their results, where they were made, and the answer. Never the reasoning: models
    are not asked to read their own thinking again, and some refuse it.

    Exchanges still streaming, and those that produced no answer at all, are left out: the model would otherwise
    see a question with no reply.
    """
    path = _path_to(tree, parent)
    if not path:
        return []
    turns: list[ChatCompletionMessageParam] = []
    earlier = (
        Exchange.objects.filter(id__in=path)
        .exclude(status=Exchange.Status.STREAMING)
        .exclude(answer="")
        .order_by("created")
        .only("prompt", "answer", "reasoning", "reasoning_field")
        .prefetch_related("tool_calls")
    )
    for exchange in earlier:
        turns.append({"role": "user", "content": exchange.prompt})
        turns.extend(_answer_messages(exchange))
    return turns


def _path_to(tree: Tree, node: uuid.UUID | None) -> list[uuid.UUID]:
    """`node` and its ancestors. Parents are always older exchanges, but a row edited in the admin could point
    anywhere: the walk stops after as many steps as there are exchanges."""
    path: list[uuid.UUID] = []
    while node is not None and node in tree and len(path) < len(tree):
        path.append(node)
        node = tree[node]
    return path


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


def conversations_of(*, client: Client, include_deleted: bool = False) -> QuerySet[Conversation]:
    """The client's conversations; those it deleted only with `include_deleted` (the log keeps them)."""
    conversations = Conversation.objects.filter(client=client.key)
    return conversations if include_deleted else conversations.filter(deleted__isnull=True)


def conversation_list(*, client: Client) -> list[dict[str, Any]]:
    conversations = conversations_of(client=client).order_by("-updated")[:CONVERSATIONS_LISTED]
    return [_conversation_summary(c) for c in conversations.only("id", "title", "updated")]


def _conversation_summary(conversation: Conversation) -> dict[str, Any]:
    return {"id": str(conversation.id), "title": conversation.title, "updated": conversation.updated.isoformat()}


def conversation_detail(*, client: Client, conversation_id: uuid.UUID) -> dict[str, Any]:
    conversation = conversations_of(client=client).filter(id=conversation_id).first()
    if conversation is None:
        raise NotFound("There is no such conversation.")
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "settings": conversation.settings,
        "exchanges": [
            _exchange_as_dict(e) for e in conversation.exchanges.order_by("created").prefetch_related("tool_calls")
        ],
    }


def _exchange_as_dict(exchange: Exchange) -> dict[str, Any]:
    error = {"code": exchange.error_code, "message": exchange.error_message} if exchange.error_code else None
    return {
        "stream": str(exchange.id),
        "parent": str(exchange.parent_id) if exchange.parent_id else None,
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
        "feedback": exchange_feedback(exchange),
    }


def exchange_feedback(exchange: Exchange) -> dict[str, str] | None:
    """What the client thought of the answer, as the API shows it: `{"rating", "comment"}`, or None if nothing."""
    if not exchange.feedback:
        return None
    return {"rating": exchange.feedback, "comment": exchange.feedback_comment}


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


def exchange_matches(*, client: Client, query: str, include_deleted: bool = False) -> QuerySet[Exchange]:
    """The client's own ended exchanges whose prompt or answer matches `query`: the one search that the built-in
    `search_history` tool and the sidebar's search share. Exchanges of conversations the client deleted are left out
    unless `include_deleted`.

    On PostgreSQL a full-text search (web-search syntax: words, "a phrase", -not), best ranked first; elsewhere each
    of its words (the first `SEARCH_WORDS`) as a case-insensitive substring of either, newest first. Streams still
    running are left out: their answer is not written yet, and the stream asking is one of them. A blank query
    matches nothing.
    """
    query = query.strip()
    if not query:
        return Exchange.objects.none()
    ended = Exchange.objects.filter(client=client.key).exclude(status=Exchange.Status.STREAMING)
    if not include_deleted:
        ended = ended.filter(conversation__deleted__isnull=True)
    return _match(ended, query, ("prompt", "answer"))


def exchange_search(*, client: Client, query: str, limit: int) -> list[Exchange]:
    """The client's own ended exchanges that match `query` (see `exchange_matches`), at most `limit`, with their
    conversations: what the built-in `search_history` tool reads.

    It speaks to the person, so, like their own search and list, it does not show the conversations they deleted;
    the log and the admin still have them.
    """
    if limit < 1:
        return []
    return list(exchange_matches(client=client, query=query).select_related("conversation")[:limit])


def conversation_search(*, client: Client, query: str, page: int = 1) -> dict[str, Any]:
    """One page of the client's own conversations (never deleted ones) whose title or content matches `query`,
    newest first, `SEARCH_PAGE` to a page, each with a `snippet` of an exchange that matched ("" when only the
    title did). `next_page` is the next page's number, or None on the last page.

    Content matching is `exchange_matches`, the tool's search; titles are matched the same way.
    """
    query = query.strip()
    found: list[dict[str, Any]] = []
    if not query or page < 1:
        return {"conversations": found, "page": page, "next_page": None}
    matching = exchange_matches(client=client, query=query)
    by_title = _match(conversations_of(client=client), query, ("title",)).values("id")
    conversations = (
        conversations_of(client=client)
        .filter(Q(id__in=by_title) | Q(id__in=matching.values("conversation_id")))
        .order_by("-updated", "-id")
        .only("id", "title", "updated")
    )
    offset = (page - 1) * SEARCH_PAGE
    shown = list(conversations[offset : offset + SEARCH_PAGE + 1])  # one more says whether a next page exists
    more = len(shown) > SEARCH_PAGE
    shown = shown[:SEARCH_PAGE]
    best = _best_exchanges(matching, [c.id for c in shown])
    for conversation in shown:
        exchange = best.get(conversation.id)
        found.append({**_conversation_summary(conversation), "snippet": _snippet(exchange, query) if exchange else ""})
    return {"conversations": found, "page": page, "next_page": page + 1 if more else None}


def _best_exchanges(matching: QuerySet[Exchange], conversation_ids: list[uuid.UUID]) -> dict[uuid.UUID, Exchange]:
    """The best-matching exchange (first in the search's order) of each of these conversations."""
    best: dict[uuid.UUID, Exchange] = {}
    if not conversation_ids:
        return best
    # At most a page's conversations, and only their matching exchanges: bounded by what the client wrote there.
    for exchange in matching.filter(conversation_id__in=conversation_ids).only("conversation_id", "prompt", "answer"):
        best.setdefault(exchange.conversation_id, exchange)
    return best


def _snippet(exchange: Exchange, query: str) -> str:
    """Plain text around the first word of the query found in the prompt, else the answer; else the prompt's start.

    Never markup: the page shows it as text. (PostgreSQL may have matched a stemmed form the text does not contain
    as typed; then the prompt's start stands for the exchange.)
    """
    words = [w.strip('"').lstrip("-") for w in query.split()[:SEARCH_WORDS]]
    for text in (exchange.prompt, exchange.answer):
        flat = " ".join(text.split())
        lowered = flat.casefold()
        places = [lowered.find(w.casefold()) for w in words if w]
        places = [p for p in places if p >= 0]
        if places:
            at = min(places)
            begin = max(0, at - SNIPPET_BEFORE)
            end = min(len(flat), at + SNIPPET_AFTER)
            return ("…" if begin else "") + flat[begin:end] + ("…" if end < len(flat) else "")
    flat = " ".join(exchange.prompt.split())
    return flat[:SNIPPET_AFTER] + ("…" if len(flat) > SNIPPET_AFTER else "")


def _match(rows: QuerySet[Any], query: str, fields: tuple[str, ...]) -> QuerySet[Any]:
    if connection.vendor == "postgresql":
        return full_text_match(rows, query, fields=fields)
    return every_word_match(rows, query, fields=fields)


def full_text_match(
    rows: QuerySet[Any], query: str, *, fields: tuple[str, ...] = ("prompt", "answer")
) -> QuerySet[Any]:
    """PostgreSQL's full-text search of `fields`, best ranked first."""
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    document, words = SearchVector(*fields), SearchQuery(query, search_type="websearch")
    matched = rows.annotate(document=document, rank=SearchRank(document, words)).filter(document=words)
    return matched.order_by("-rank", "-created")


def every_word_match(
    rows: QuerySet[Any], query: str, *, fields: tuple[str, ...] = ("prompt", "answer")
) -> QuerySet[Any]:
    """Each word of the query anywhere in one of `fields`, newest first: for any database."""
    for word in query.split()[:SEARCH_WORDS]:
        anywhere = Q()
        for field in fields:
            anywhere |= Q(**{f"{field}__icontains": word})
        rows = rows.filter(anywhere)
    return rows.order_by("-created")
