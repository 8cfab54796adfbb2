"""Reads of the exchange log, always scoped to the client that asks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from openai.types.chat import ChatCompletionMessageParam

from streaming.clients import Client
from streaming.errors import NotFound
from streaming.models import Conversation, Exchange

CONVERSATIONS_LISTED = 100


def conversation_turns(*, conversation: Conversation) -> list[ChatCompletionMessageParam]:
    """The earlier turns the model sees when a conversation continues.

    Exchanges still streaming, and those that produced no answer at all, are left out: the model would otherwise
    see a question with no reply.
    """
    turns: list[ChatCompletionMessageParam] = []
    earlier = (
        conversation.exchanges.exclude(status=Exchange.Status.STREAMING)
        .exclude(answer="")
        .order_by("created")
        .values_list("prompt", "answer")
    )
    for prompt, answer in earlier:
        turns.append({"role": "user", "content": prompt})
        turns.append({"role": "assistant", "content": answer})
    return turns


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
        "exchanges": [_exchange_as_dict(e) for e in conversation.exchanges.order_by("created")],
    }


def _exchange_as_dict(exchange: Exchange) -> dict[str, Any]:
    error = {"code": exchange.error_code, "message": exchange.error_message} if exchange.error_code else None
    return {
        "stream": str(exchange.id),
        "prompt": exchange.prompt,
        "answer": exchange.answer,
        "status": exchange.status,
        "finish_reason": exchange.finish_reason or None,
        "model": exchange.model,
        "ttft_ms": exchange.ttft_ms,
        "duration_ms": exchange.duration_ms,
        "usage": exchange.usage(),
        "error": error,
        "last_seq": exchange.last_seq,
        "created": exchange.created.isoformat(),
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
