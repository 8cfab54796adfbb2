"""Writes to the exchange log. Synchronous ORM code; async callers wrap these in `database_sync_to_async`.

Each stream costs two writes: `exchange_start` when the prompt is accepted and `exchange_finish` when it ends.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from openai.types.chat import ChatCompletionMessageParam

from streaming.clients import Client
from streaming.errors import NotFound, StreamingError, TooManyStreams
from streaming.models import Conversation, Exchange
from streaming.protocol import Prompt, Usage
from streaming.selectors import conversation_turns

TITLE_CHARS = 80


def exchange_start(
    *, client: Client, prompt: Prompt, demo: bool, worker: str
) -> tuple[Exchange, list[ChatCompletionMessageParam]]:
    """Record an accepted prompt and return its exchange with the messages to send the model.

    Raises:
        TooManyStreams: the client already runs `STREAMING_MAX_STREAMS` streams.
        NotFound: `prompt.conversation` is not one of the client's conversations.
    """
    with transaction.atomic():
        if _running_streams(client) >= settings.STREAMING_MAX_STREAMS:
            raise TooManyStreams()
        conversation = _conversation_for(client=client, prompt=prompt)
        messages: list[ChatCompletionMessageParam] = []
        if prompt.system:
            messages.append({"role": "system", "content": prompt.system})
        if prompt.conversation is not None:  # a new conversation has no earlier turns: no query for them
            messages.extend(conversation_turns(conversation=conversation))
        messages.append({"role": "user", "content": prompt.content})
        exchange = Exchange.objects.create(
            conversation=conversation,
            client=client.key,
            user_id=client.user_id,
            session_key=client.session_key,
            request=prompt.request,
            model=prompt.model,
            demo=demo,
            parameters=prompt.parameters(),
            prompt=prompt.content,
            worker=worker,
        )
    return exchange, messages


def exchange_finish(
    *,
    exchange_id: uuid.UUID,
    status: Exchange.Status,
    answer: str,
    last_seq: int,
    delta_ends: list[int],
    duration_ms: int,
    finish_reason: str | None = None,
    ttft_ms: int | None = None,
    usage: Usage | None = None,
    error: StreamingError | None = None,
) -> None:
    """Record how a stream ended, with the answer exactly as it was streamed."""
    Exchange.objects.filter(id=exchange_id).update(
        status=status,
        answer=answer,
        last_seq=last_seq,
        delta_ends=delta_ends,
        finish_reason=finish_reason or "",
        ttft_ms=ttft_ms,
        duration_ms=duration_ms,
        prompt_tokens=usage["prompt_tokens"] if usage else None,
        completion_tokens=usage["completion_tokens"] if usage else None,
        error_code=error.code if error else "",
        error_message=error.message if error else "",
        finished=timezone.now(),
    )


def _running_streams(client: Client) -> int:
    # A stream cannot outlive STREAMING_MAX_SECONDS, so an older `streaming` row is one whose worker died;
    # it must not count against the client.
    since = timezone.now() - timedelta(seconds=settings.STREAMING_MAX_SECONDS + 60)
    return Exchange.objects.filter(client=client.key, status=Exchange.Status.STREAMING, created__gte=since).count()


def _conversation_for(*, client: Client, prompt: Prompt) -> Conversation:
    if prompt.conversation is None:
        title = " ".join(prompt.content.split())[:TITLE_CHARS]
        return Conversation.objects.create(client=client.key, user_id=client.user_id, title=title)
    conversation = Conversation.objects.filter(id=prompt.conversation, client=client.key).first()
    if conversation is None:
        raise NotFound("There is no such conversation.")
    conversation.save(update_fields=["updated"])  # newest first in the sidebar
    return conversation


def exchange_interrupt(*, exchange_id: uuid.UUID, answer: str, delta_ends: list[int], error: StreamingError) -> bool:
    """Log a stream whose worker died as interrupted, with what its replay buffer kept of the answer.

    Returns whether this call did it: of several workers sweeping at once, exactly one does.
    """
    updated = Exchange.objects.filter(id=exchange_id, status=Exchange.Status.STREAMING).update(
        status=Exchange.Status.INTERRUPTED,
        answer=answer,
        last_seq=len(delta_ends),
        delta_ends=delta_ends,
        error_code=error.code,
        error_message=error.message,
        finished=timezone.now(),
    )
    return updated == 1
