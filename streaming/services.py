"""Writes to the exchange log. Synchronous ORM code; async callers wrap these in `database_sync_to_async`.

Each stream costs two writes: `exchange_start` when the prompt is accepted and `exchange_finish` when it ends (with
its tool calls, in the same transaction).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from openai.types.chat import ChatCompletionMessageParam

from streaming.clients import Client
from streaming.ending import Ending
from streaming.errors import NotFound, StreamingError, TooManyStreams
from streaming.history import fit_history
from streaming.models import Conversation, Exchange, ToolCall
from streaming.protocol import Prompt
from streaming.selectors import conversation_turns
from streaming.tool_calls import MadeCall
from streaming.transcript import Transcript

TITLE_CHARS = 80


def exchange_start(
    *, client: Client, prompt: Prompt, demo: bool, worker: str
) -> tuple[Exchange, list[ChatCompletionMessageParam]]:
    """Record an accepted prompt and return its exchange with the messages to send the model.

    Raises:
        TooManyStreams: the client already runs `STREAMING_MAX_STREAMS` streams.
        NotFound: `prompt.conversation` is not one of the client's conversations.
        PromptTooLong: the prompt with its system instruction is longer than `STREAMING_HISTORY_CHARS`; nothing
            is saved.
    """
    with transaction.atomic():
        if _running_streams(client) >= settings.STREAMING_MAX_STREAMS:
            raise TooManyStreams()
        conversation = _conversation_for(client=client, prompt=prompt)
        # A new conversation has no earlier turns: no query for them.
        turns = conversation_turns(conversation=conversation) if prompt.conversation is not None else []
        messages = fit_history(  # raises PromptTooLong before the exchange exists: the new conversation is rolled back
            system=prompt.system, turns=turns, prompt=prompt.content, budget_chars=settings.STREAMING_HISTORY_CHARS
        )
        exchange = Exchange.objects.create(
            conversation=conversation,
            client=client.key,
            user_id=client.user_id,
            session_key=client.session_hash,
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
    ending: Ending,
    transcript: Transcript,
    calls: list[MadeCall] | None = None,
    reasoning_field: str = "",
) -> bool:
    """Record how a stream ended, with the answer, reasoning and tool calls exactly as they were streamed.

    Returns whether this call did it: a row that already ended (a sweep took its worker for dead and told its
    clients so) keeps the end its clients were told.
    """
    usage = ending.usage
    with transaction.atomic():
        updated = Exchange.objects.filter(id=exchange_id, status=Exchange.Status.STREAMING).update(
            status=ending.status,
            answer=transcript.answer,
            reasoning=transcript.reasoning,
            reasoning_field=reasoning_field,
            last_seq=ending.last_seq,
            layout=transcript.layout,
            finish_reason=ending.finish_reason,
            ttft_ms=ending.ttft_ms,
            first_output_ms=ending.first_output_ms,
            duration_ms=ending.duration_ms,
            prompt_tokens=usage["prompt_tokens"] if usage else None,
            completion_tokens=usage["completion_tokens"] if usage else None,
            error_code=ending.error.code if ending.error else "",
            error_message=ending.error.message if ending.error else "",
            finished=timezone.now(),
        )
        if updated and calls:
            ToolCall.objects.bulk_create(_call_rows(exchange_id, calls))
    return updated == 1


def _call_rows(exchange_id: uuid.UUID, calls: list[MadeCall]) -> list[ToolCall]:
    return [
        ToolCall(
            exchange_id=exchange_id,
            position=position,
            round=made.round,
            call_id=made.call.id,
            name=made.call.name,
            arguments=made.call.arguments_text,
            status=made.outcome.status if made.outcome else ToolCall.Status.STOPPED,
            result=made.outcome.result or "" if made.outcome else "",
            error_code=made.outcome.error_code or "" if made.outcome else "",
            error_message=made.outcome.error_message or "" if made.outcome else "",
            duration_ms=made.outcome.duration_ms if made.outcome else None,
            answer_offset=made.answer_offset,
            reasoning_offset=made.reasoning_offset,
        )
        for position, made in enumerate(calls, start=1)
    ]


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


def exchange_interrupt(
    *, exchange_id: uuid.UUID, transcript: Transcript, error: StreamingError, calls: list[MadeCall] | None = None
) -> bool:
    """Log a stream whose worker died as interrupted, with what its record kept of the answer, the reasoning and
    the tool calls.

    Returns whether this call did it: of several workers sweeping at once, exactly one does.
    """
    with transaction.atomic():
        updated = _interrupt(exchange_id, transcript, error)
        if updated and calls:
            ToolCall.objects.bulk_create(_call_rows(exchange_id, calls))
    return updated


def _interrupt(exchange_id: uuid.UUID, transcript: Transcript, error: StreamingError) -> bool:
    updated = Exchange.objects.filter(id=exchange_id, status=Exchange.Status.STREAMING).update(
        status=Exchange.Status.INTERRUPTED,
        answer=transcript.answer,
        reasoning=transcript.reasoning,
        last_seq=len(transcript.deltas),
        layout=transcript.layout,
        error_code=error.code,
        error_message=error.message,
        finished=timezone.now(),
    )
    return updated == 1
