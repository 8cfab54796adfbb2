"""The log of every exchange with the model, grouped into conversations.

Invariants:
- An `Exchange` row is written when a prompt is accepted (status `streaming`) and once more when its stream ends,
  never per delta, together with its tool calls. Its final status says how it ended; `answer` is then exactly the
  concatenated delta texts, `reasoning` the concatenated reasoning texts, and `layout` the order in which they and
  the tool-call frames were sent (see `streaming.relay.transcript`).
- `client` is the identity whose sockets receive the stream (see `streaming.clients`); a conversation and all its
  exchanges belong to one client, and only that client can read or continue them.
- Once an exchange has ended, its client may rate it (`feedback`, with a comment): the one later write to the row,
  and it changes only the `feedback*` fields, never what was streamed.
- A conversation is a tree of exchanges: each one's `parent` is the exchange whose answer it follows, in the same
  conversation. Siblings are versions of one turn (a regenerated answer, an edited question); the model is sent
  only the path from the root to the new prompt's parent (`selectors.path_turns`).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.CharField(max_length=100, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    title = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True, db_index=True)
    deleted = models.DateTimeField(
        null=True, blank=True, help_text="When its client deleted it: hidden from them, kept in the log."
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="What its client chose for it (model, system instruction, temperature, max tokens).",
    )

    class Meta:
        ordering = ["-updated"]

    def __str__(self) -> str:
        return self.title


FEEDBACK_COMMENT_CHARS = 2000


class Exchange(models.Model):
    """One prompt and the answer streamed for it; its id is the stream id clients see."""

    class Status(models.TextChoices):
        STREAMING = "streaming"
        COMPLETED = "completed"
        CANCELLED = "cancelled"
        FAILED = "failed"
        INTERRUPTED = "interrupted"

    class Rating(models.TextChoices):
        UP = "up", "good (thumbs up)"
        DOWN = "down", "bad (thumbs down)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, related_name="exchanges", on_delete=models.CASCADE)
    # Which answer this prompt follows: None for a conversation's first prompt. A regenerated answer or an edited
    # question is a new exchange with the same parent as the one it replaces (its earlier version).
    parent = models.ForeignKey("self", null=True, blank=True, related_name="children", on_delete=models.SET_NULL)
    client = models.CharField(max_length=100, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    session_key = models.CharField(
        max_length=64,
        blank=True,
        verbose_name="session hash",
        help_text="The SHA-256 of an anonymous visitor's session key; the key itself is never stored.",
    )
    address = models.CharField(
        max_length=64,
        blank=True,
        verbose_name="address hash",
        help_text="The SHA-256 of the address an anonymous visitor asked from, so that a new session is not a new "
        "budget; the address itself is never stored.",
    )
    request = models.CharField(max_length=64, help_text="The id the client gave its prompt.")
    model = models.CharField(max_length=100, db_index=True)
    demo = models.BooleanField(default=False, help_text="Answered by the built-in demo model.")
    parameters = models.JSONField(default=dict, blank=True)
    prompt = models.TextField()
    answer = models.TextField(blank=True)
    reasoning = models.TextField(blank=True, help_text="What the model wrote while thinking, apart from the answer.")
    reasoning_field = models.CharField(
        max_length=40,
        blank=True,
        help_text="Where the server sent the reasoning; DeepSeek's `reasoning_content` goes back with tool calls.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STREAMING, db_index=True)
    finish_reason = models.CharField(max_length=40, blank=True, db_index=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    last_seq = models.PositiveIntegerField(default=0, help_text="How many deltas the answer was sent in.")
    layout = models.JSONField(
        default=list, blank=True, help_text="The order of the stream's frames, so an ended stream can be replayed."
    )
    worker = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="The process that generated it (the last, if taken over)."
    )
    takeovers = models.PositiveSmallIntegerField(
        default=0,
        help_text="How many times another worker went on with the answer after the one generating it died or "
        "restarted (STREAMING_TAKEOVER).",
    )
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name="time to first token (ms)")
    first_output_ms = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="time to first output (ms)", help_text="Reasoning, a tool call or text."
    )
    duration_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name="duration (ms)")
    counted_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="What the answer cost of its client's budget: the tokens the model reported, or an estimate from "
        "what was relayed when it reported none (cancelled, cut off).",
    )
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    finished = models.DateTimeField(null=True, blank=True)
    # What the person thought of the answer, once it ended (`services.exchange_rate`); blank when they said nothing.
    feedback = models.CharField(max_length=10, choices=Rating.choices, blank=True, db_index=True)
    feedback_comment = models.TextField(max_length=FEEDBACK_COMMENT_CHARS, blank=True)
    feedback_at = models.DateTimeField(null=True, blank=True, help_text="When the feedback was last given.")

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["client", "status"]),
            models.Index(fields=["client", "created"]),  # the budgets' windows
            models.Index(fields=["address", "created"]),
            # The staff dashboard (`streaming.dashboard`) reads its window from these alone: on PostgreSQL an
            # index-only scan, never the rows' wide prompt, answer and layout.
            models.Index(
                fields=["created"],
                include=[
                    "id",
                    "model",
                    "ttft_ms",
                    "prompt_tokens",
                    "completion_tokens",
                    "counted_tokens",
                    "client",
                    "user",
                ],
                name="streaming_exchange_dashboard",
            ),
            models.Index(
                fields=["created"],
                include=["error_code"],
                condition=~models.Q(error_code=""),
                name="streaming_exchange_errors",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prompt[:60]} ({self.status})"

    def usage(self) -> dict[str, int] | None:
        """Token usage as the protocol's `done` frame carries it, or None when the model reported none."""
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


class ToolCall(models.Model):
    """A function the model called while answering, with what it was given and what it returned.

    `answer_offset` and `reasoning_offset` say how much of the exchange's answer and reasoning had been written when
    the call ran (for a call cut off while it was written: when it began), so that later turns can send the model
    its calls where it made them, and the page can show them there.
    """

    class Status(models.TextChoices):
        DONE = "done"
        FAILED = "failed"
        STOPPED = "stopped", "stopped (the answer ended first)"

    exchange = models.ForeignKey(Exchange, related_name="tool_calls", on_delete=models.CASCADE)
    position = models.PositiveIntegerField(help_text="Its place among the exchange's calls.")
    round = models.PositiveIntegerField(help_text="Which of the model's responses made the call (from 1).")
    call_id = models.CharField(max_length=100)
    name = models.CharField(max_length=100, db_index=True)
    arguments = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    result = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name="duration (ms)")
    answer_offset = models.PositiveIntegerField(default=0)
    reasoning_offset = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["exchange", "position"]
        constraints = [models.UniqueConstraint(fields=["exchange", "position"], name="one_call_per_position")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"
