"""Writes to the exchange log. Synchronous database code (the ORM, and `rows` for the statements on the way of every
prompt and every end); async callers wrap these in `database_sync_to_async`.

Each stream costs two writes: `exchanges_start` when the prompt is accepted and `exchanges_finish` when it ends (with
its tool calls, in the same transaction); both take the prompts, or the ends, that arrive together in one
transaction. Feedback on an answer (`exchange_rate`) is a write of its own, to an ended
row's `feedback*` fields only.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.db.models import F
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Length
from django.utils import timezone
from openai.types.chat import ChatCompletionMessageParam

from streaming import budgets, instructions, rows, signals
from streaming.clients import Client
from streaming.conf import app_settings
from streaming.errors import BadRequest, NotFound, StillStreaming, StreamingError, TooManyStreams
from streaming.models import FEEDBACK_COMMENT_CHARS, Conversation, Exchange, ToolCall
from streaming.protocol import Limits, Prompt, parse_settings
from streaming.relay.ending import Ending
from streaming.relay.history import fit_history
from streaming.relay.tool_calls import MadeCall
from streaming.relay.transcript import Transcript
from streaming.selectors import Tree, conversation_tree, path_turns

TITLE_CHARS = 80  # of the first prompt, as a new conversation's title
TITLE_MAX_CHARS = 200  # of a title the person gives (the column's length)


@dataclass(frozen=True)
class Arrival:
    """A prompt that arrived at this worker, with who sent it and from where (`budgets.address_hash`, kept for an
    anonymous client)."""

    client: Client
    prompt: Prompt
    address: str = ""


# An admitted prompt: its exchange, with the messages to send the model.
Admitted = tuple[Exchange, list[ChatCompletionMessageParam]]


def exchanges_start(
    *,
    arrivals: list[Arrival],
    demo: bool,
    worker: str,
    checked: Callable[[list[Admitted | Exception]], None] | None = None,
) -> list[Admitted | Exception]:
    """Record a batch of prompts in one transaction: for each, in order, its exchange and messages, or why it was
    refused (nothing of it is saved then).

    `checked` is called with the same list once every check has passed or refused, before the rows are written in
    the same transaction: an admitted prompt's request need not wait for its row (see `streams`). Its locks are
    held until the rows are in, so no other batch counts without them.

    A burst of prompts reaches the database as a few queries for the whole batch (on PostgreSQL the lock of every
    client it counts, see `budgets.take_turns`; the running streams; the budgets; two inserts) instead of a few per
    prompt: while the event loop is busy, every query costs the database thread a
    wait for the GIL, so it is the number of queries that sets how long a prompt waits for its first word. The
    batch's earlier prompts count against its later ones, as their rows would.

    Refusals, each for its prompt alone:
        TooManyStreams: the client already runs `STREAMING_MAX_STREAMS` streams.
        TooManyPrompts, OverTokenBudget: the client is over a budget (`streaming.budgets`).
        NotFound: `prompt.conversation` is not one of the client's conversations, or the message it names is not in
            it.
        PromptTooLong: the prompt with its system instruction is longer than `STREAMING_HISTORY_CHARS`.
        Any other exception but a database error (the host's system instruction function raised, say).
    A database error fails the whole batch: it is raised.
    """
    now = timezone.now()
    outcomes: list[Admitted | Exception] = []
    with transaction.atomic():
        asking = [(arrival.client, _anonymous_address(arrival)) for arrival in arrivals]
        ledger = budgets.Ledger.of(asking, now=now)
        with rows.together():  # the locks and the counts in one round trip, read once they are all in
            budgets.take_turns(key for client, address in asking for key in budgets.counted_keys(client, address))
            counted = _running_streams({client.key for client, _ in asking}, now=now)
            used = ledger.send()
        running = counted()
        used()
        batch = _Batch()
        for arrival in arrivals:
            try:
                if running[arrival.client.key] >= app_settings.MAX_STREAMS:
                    raise TooManyStreams()
                admitted = _admit(arrival, batch, demo=demo, worker=worker)
                ledger.admit(arrival.client, _anonymous_address(arrival))
            except DatabaseError:
                raise
            except Exception as exc:
                outcomes.append(exc)
                continue
            running[arrival.client.key] += 1
            batch.keep(admitted[0])
            outcomes.append(admitted)
        if checked is not None:
            checked(outcomes)
        batch.save(now=now)
    for outcome in outcomes:
        if not isinstance(outcome, Exception):
            signals.send(signals.exchange_started, outcome[0])
    return outcomes


class _Batch:
    """The rows a batch of prompts adds, written together once every prompt of it has been checked."""

    def __init__(self) -> None:
        self.new_conversations: dict[uuid.UUID, Conversation] = {}
        self.continued: set[uuid.UUID] = set()
        self.exchanges: list[Exchange] = []
        self._pending: Conversation | None = None

    def conversation(self, client: Client, prompt: Prompt) -> Conversation:
        if prompt.conversation is None:
            title = " ".join(prompt.content.split())[:TITLE_CHARS]
            self._pending = Conversation(
                client=client.key, user_id=client.user_id, title=title, settings=prompt.settings()
            )
            return self._pending
        if (conversation := self.new_conversations.get(prompt.conversation)) is not None:
            return conversation  # started by an earlier prompt of this batch
        # A deleted conversation is gone for its client: it takes no more prompts.
        conversation = Conversation.objects.filter(
            id=prompt.conversation, client=client.key, deleted__isnull=True
        ).first()
        if conversation is None:
            raise NotFound("There is no such conversation.")
        return conversation

    def keep(self, exchange: Exchange) -> None:
        if self._pending is not None and exchange.conversation_id == self._pending.id:
            self.new_conversations[self._pending.id] = self._pending
        elif exchange.conversation_id not in self.new_conversations:
            self.continued.add(exchange.conversation_id)
        self._pending = None
        self.exchanges.append(exchange)

    def save(self, *, now: datetime) -> None:
        with rows.together():  # both inserts in one round trip
            rows.insert(Conversation, self.new_conversations.values())
            rows.insert(Exchange, self.exchanges)
        if self.continued:  # newest first in the sidebar
            Conversation.objects.filter(id__in=self.continued).update(updated=now)


def _admit(arrival: Arrival, batch: _Batch, *, demo: bool, worker: str) -> Admitted:
    """The exchange of one prompt and its messages, not saved yet (see `_Batch`)."""
    client, prompt = arrival.client, arrival.prompt
    conversation = batch.conversation(client, prompt)
    tree = _tree(conversation, prompt, batch)
    parent, content = _placement(prompt, tree)
    messages = fit_history(  # raises PromptTooLong
        system=instructions.system_for(client=client, conversation=conversation.id, requested=prompt.system),
        turns=path_turns(tree=tree, parent=parent),
        prompt=content,
        budget_chars=app_settings.HISTORY_CHARS,
    )
    exchange = Exchange(
        conversation=conversation,
        parent_id=parent,
        client=client.key,
        user_id=client.user_id,
        session_key=client.session_hash,
        address=_anonymous_address(arrival),
        request=prompt.request,
        model=prompt.model,
        demo=demo,
        parameters=prompt.parameters(),
        prompt=content,
        worker=worker,
    )
    return exchange, messages


def _tree(conversation: Conversation, prompt: Prompt, batch: _Batch) -> Tree:
    """The conversation's exchanges with their parents, this batch's earlier ones included. A new conversation has
    no earlier turns: no query for them."""
    saved = prompt.conversation is not None and prompt.conversation not in batch.new_conversations
    tree = conversation_tree(conversation=conversation) if saved else {}
    for exchange in batch.exchanges:
        if exchange.conversation_id == conversation.id:
            tree[exchange.id] = exchange.parent_id
    return tree


def _anonymous_address(arrival: Arrival) -> str:
    return arrival.address if arrival.client.user_id is None else ""


def _placement(prompt: Prompt, tree: Tree) -> tuple[uuid.UUID | None, str]:
    """The exchange the new one follows, and the question it answers.

    A regenerated answer and an edited question are new versions of the exchange they name: they follow its parent,
    and a regenerated answer answers its question again. A prompt follows the `parent` it names, or else the
    conversation's newest exchange, which is the one a page shows last until it switches versions.

    Raises:
        NotFound: the exchange named is not in the prompt's conversation.
    """
    named = prompt.regenerate or prompt.edit or prompt.parent
    if named is not None and named not in tree:
        raise NotFound("There is no such message in this conversation.")
    if prompt.regenerate is not None:
        return tree[prompt.regenerate], Exchange.objects.values_list("prompt", flat=True).get(id=prompt.regenerate)
    if prompt.edit is not None:
        return tree[prompt.edit], prompt.content
    newest = next(reversed(tree), None)
    return prompt.parent or newest, prompt.content


@dataclass(frozen=True)
class Finish:
    """How a stream ended, with the answer, reasoning and tool calls exactly as they were streamed."""

    exchange_id: uuid.UUID
    ending: Ending
    transcript: Transcript
    calls: list[MadeCall] = field(default_factory=list)
    reasoning_field: str = ""


def exchange_finish(
    *,
    exchange_id: uuid.UUID,
    ending: Ending,
    transcript: Transcript,
    calls: list[MadeCall] | None = None,
    reasoning_field: str = "",
) -> bool:
    """Record how one stream ended (see `exchanges_finish`); whether this call did it."""
    finish = Finish(exchange_id, ending, transcript, calls or [], reasoning_field)
    return exchanges_finish(finishes=[finish]) == [True]


def exchanges_finish(*, finishes: list[Finish]) -> list[bool]:
    """Record how a batch of streams ended, in one transaction: for each, whether this call did it.

    A row that already ended (a sweep took its worker for dead and told its clients so) keeps the end its clients
    were told: each row is updated only while it is still `streaming`. Ends come in bursts as prompts do, and are
    batched for the same reason (see `exchanges_start`); one small update per row costs a fraction of the CPU of
    Django's `bulk_update`, whose CASE per field and row was measured at about 1.2 ms a row.
    """
    now = timezone.now()
    with transaction.atomic():
        with rows.together():  # every end in one round trip, read once they are all in
            ending = [_end_row(finish, now) for finish in finishes]
        ended = [read() for read in ending]
        calls = [
            row
            for finish, done in zip(finishes, ended, strict=True)
            if done
            for row in _call_rows(finish.exchange_id, finish.calls)
        ]
        ToolCall.objects.bulk_create(calls)
    for finish, done in zip(finishes, ended, strict=True):
        if done:
            _finished(finish.exchange_id)
    return ended


def _end_row(finish: Finish, now: datetime) -> Callable[[], bool]:
    ending, transcript, usage = finish.ending, finish.transcript, finish.ending.usage
    values = {
        "status": ending.status,
        "answer": transcript.answer,
        "reasoning": transcript.reasoning,
        "reasoning_field": finish.reasoning_field,
        "last_seq": ending.last_seq,
        "layout": transcript.layout,
        "finish_reason": ending.finish_reason,
        "ttft_ms": ending.ttft_ms,
        "first_output_ms": ending.first_output_ms,
        "duration_ms": ending.duration_ms,
        "prompt_tokens": usage["prompt_tokens"] if usage else None,
        "completion_tokens": usage["completion_tokens"] if usage else None,
        "counted_tokens": usage["total_tokens"] if usage else None,  # None: the estimate below
        "error_code": ending.error.code if ending.error else "",
        "error_message": ending.error.message if ending.error else "",
        "finished": now,
    }
    return rows.exchange_end(
        finish.exchange_id,
        values,
        estimate=_written_tokens(transcript, finish.calls),
        chars_per_token=budgets.CHARS_PER_TOKEN,
    )


def _estimated_cost(transcript: Transcript, calls: list[MadeCall] | None) -> CombinedExpression:
    """What an answer the model reported no usage for costs its client's budget: the prompt, and everything the
    model was seen writing (text, reasoning, tool arguments), at `budgets.CHARS_PER_TOKEN`. The earlier turns it was
    sent are not counted: a lower bound, so that an estimate never refuses someone the model would not have.
    (`_end_row` has the same sum written in SQL, `rows.exchange_end`.)"""
    return Length("prompt") / budgets.CHARS_PER_TOKEN + _written_tokens(transcript, calls)


def _written_tokens(transcript: Transcript, calls: list[MadeCall] | None) -> int:
    written = len(transcript.answer) + len(transcript.reasoning) + sum(len(c.call.arguments_text) for c in calls or [])
    return budgets.estimated_tokens(written)


def _finished(exchange_id: uuid.UUID) -> None:
    """`exchange_finished` with the ended row; read only when someone listens, so it costs nothing otherwise."""
    if signals.exchange_finished.has_listeners():
        signals.send(signals.exchange_finished, Exchange.objects.get(id=exchange_id))


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


def _running_streams(keys: set[str], *, now: datetime) -> Callable[[], Counter[str]]:
    """How many streams each of these clients runs, in one query (read when called, see `rows`).

    A stream cannot outlive STREAMING_MAX_SECONDS, so an older `streaming` row is one whose worker died; it must
    not count against the client.
    """
    return rows.running_streams(keys, since=now - timedelta(seconds=app_settings.MAX_SECONDS + 60))


def conversation_rename(*, client: Client, conversation_id: uuid.UUID, title: object) -> Conversation:
    """Give one of the client's conversations a new title, trimmed; its place in the list does not change.

    Raises:
        BadRequest: the title is not a string of 1 to `TITLE_MAX_CHARS` characters once trimmed; nothing changes.
        NotFound: the conversation is not one of the client's, or it was deleted.
    """
    if not isinstance(title, str):
        raise BadRequest("'title' must be a string.")
    title = title.strip()
    if not 1 <= len(title) <= TITLE_MAX_CHARS:
        raise BadRequest(f"The title must be 1 to {TITLE_MAX_CHARS} characters long.")
    conversation = Conversation.objects.filter(id=conversation_id, client=client.key, deleted__isnull=True).first()
    if conversation is None:
        raise NotFound("There is no such conversation.")
    conversation.title = title
    conversation.save(update_fields=["title"])  # not `updated`: renaming is not a new message
    return conversation


def conversation_change(
    *, client: Client, conversation_id: uuid.UUID, changes: dict[str, object], limits: Limits
) -> Conversation:
    """What a PATCH of the conversation API asks: `settings` replaces the settings (`conversation_settings_change`),
    `title` renames (`conversation_rename`; also when neither is given, so that the refusal says what to send).
    With both, both change or neither does.

    Raises: what those two raise; nothing changes.
    """
    with transaction.atomic():
        conversation = None
        if "settings" in changes:
            conversation = conversation_settings_change(
                client=client, conversation_id=conversation_id, chosen=changes["settings"], limits=limits
            )
        if "title" in changes or conversation is None:
            title = changes.get("title")
            conversation = conversation_rename(client=client, conversation_id=conversation_id, title=title)
        return conversation


def conversation_settings_change(
    *, client: Client, conversation_id: uuid.UUID, chosen: object, limits: Limits
) -> Conversation:
    """Replace what one of the client's conversations remembers of its settings (its model, system instruction,
    temperature and max tokens, which the page sends with each prompt there) as a whole: a field left out is the
    default again. Its place in the list does not change.

    Raises:
        BadRequest: `chosen` is not an object of known settings within the prompt frame's bounds; nothing changes.
        NotAllowed: a model the client may not choose, or a system instruction while the deployment sets its own
            (`STREAMING_SYSTEM_INSTRUCTION`); nothing changes.
        NotFound: the conversation is not one of the client's, or it was deleted.
    """
    remembered = parse_settings(chosen, limits)
    conversation = Conversation.objects.filter(id=conversation_id, client=client.key, deleted__isnull=True).first()
    if conversation is None:
        raise NotFound("There is no such conversation.")
    conversation.settings = remembered
    conversation.save(update_fields=["settings"])  # not `updated`, like a rename
    return conversation


def conversation_delete(*, client: Client, conversation_id: uuid.UUID) -> list[uuid.UUID]:
    """Hide one of the client's conversations from it (a soft delete: the log and the admin keep it), and return
    the streams still running in it, which the caller cancels (`streams.streams_cancel`).

    It is marked deleted before those streams are cancelled, so that no new prompt can start another one in between.

    Raises:
        NotFound: the conversation is not one of the client's, or it was deleted already.
    """
    with transaction.atomic():
        deleted = Conversation.objects.filter(id=conversation_id, client=client.key, deleted__isnull=True).update(
            deleted=timezone.now()
        )
        if not deleted:
            raise NotFound("There is no such conversation.")
        return list(
            Exchange.objects.filter(conversation_id=conversation_id, status=Exchange.Status.STREAMING).values_list(
                "id", flat=True
            )
        )


def exchange_claim(*, exchange_id: uuid.UUID, owner: str, worker: str) -> bool:
    """Make `worker` the one that runs a stream whose worker (`owner`) died, to go on with it there (see
    `deployment.takeover`). Returns whether this call did it: of several workers that try at once, exactly one does.
    """
    claimed = Exchange.objects.filter(id=exchange_id, status=Exchange.Status.STREAMING, worker=owner)
    return claimed.update(worker=worker, takeovers=F("takeovers") + 1) == 1


def exchange_interrupt(
    *,
    exchange_id: uuid.UUID,
    transcript: Transcript,
    error: StreamingError,
    calls: list[MadeCall] | None = None,
    owner: str | None = None,
) -> bool:
    """Log a stream whose worker died as interrupted, with what its record kept of the answer, the reasoning and
    the tool calls; if `owner` is given, only while that worker still has it (another may have taken it over).

    Returns whether this call did it: of several workers sweeping at once, exactly one does.
    """
    with transaction.atomic():
        updated = _interrupt(exchange_id, transcript, error, calls, owner)
        if updated and calls:
            ToolCall.objects.bulk_create(_call_rows(exchange_id, calls))
    if updated:
        _finished(exchange_id)
    return updated


def _interrupt(
    exchange_id: uuid.UUID,
    transcript: Transcript,
    error: StreamingError,
    calls: list[MadeCall] | None,
    owner: str | None,
) -> bool:
    still_streaming = Exchange.objects.filter(id=exchange_id, status=Exchange.Status.STREAMING)
    if owner is not None:
        still_streaming = still_streaming.filter(worker=owner)
    updated = still_streaming.update(
        status=Exchange.Status.INTERRUPTED,
        answer=transcript.answer,
        reasoning=transcript.reasoning,
        last_seq=len(transcript.deltas),
        layout=transcript.layout,
        counted_tokens=_estimated_cost(transcript, calls),
        error_code=error.code,
        error_message=error.message,
        finished=timezone.now(),
    )
    return updated == 1


def exchange_rate(*, client: Client, exchange_id: uuid.UUID, rating: object, comment: object = "") -> Exchange:
    """Keep what the client thought of one of its answers once it has ended: `"up"` or `"down"`, with an optional
    comment (trimmed), replacing any it gave before; or `None`, which takes the feedback back, comment and all.
    Nothing else of the exchange changes.

    Raises:
        BadRequest: `rating` is not "up", "down" or None, or `comment` is not a string of at most
            `FEEDBACK_COMMENT_CHARS` characters (without NUL), or a comment comes without a rating; nothing changes.
        NotFound: the exchange is not one of the client's, or its conversation was deleted.
        StillStreaming: the answer is still being written.
    """
    rating, comment = _valid_feedback(rating, comment)
    exchange = (
        Exchange.objects.filter(id=exchange_id, client=client.key, conversation__deleted__isnull=True)
        .only("id", "status")
        .first()
    )
    if exchange is None:
        raise NotFound("There is no such answer.")
    given = timezone.now() if rating else None
    # An end is written only to a row still streaming (`exchanges_finish`), and feedback only to one that is not.
    updated = (
        Exchange.objects.filter(id=exchange.id)
        .exclude(status=Exchange.Status.STREAMING)
        .update(feedback=rating, feedback_comment=comment, feedback_at=given)
    )
    if not updated:
        raise StillStreaming()
    exchange.feedback, exchange.feedback_comment, exchange.feedback_at = rating, comment, given
    return exchange


def _valid_feedback(rating: object, comment: object) -> tuple[str, str]:
    """The rating ("" for none) and the trimmed comment, or BadRequest saying what is wrong."""
    if rating is not None and rating not in Exchange.Rating.values:
        raise BadRequest('The rating must be "up", "down" or null.')
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise BadRequest("The comment must be a string.")
    comment = comment.strip()
    if len(comment) > FEEDBACK_COMMENT_CHARS:
        raise BadRequest(f"The comment must be at most {FEEDBACK_COMMENT_CHARS} characters long.")
    if "\x00" in comment:
        raise BadRequest("The comment must not contain NUL characters.")
    if rating is None and comment:
        raise BadRequest('A comment needs a rating: send "up" or "down" with it.')
    return (rating if isinstance(rating, str) else ""), comment
