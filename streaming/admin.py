"""The exchange log in the admin: read-only, for staff, searchable over prompts, answers and feedback comments,
filterable by the feedback given.

An anonymous visitor shows as the hash of their session key (see `streaming.clients`): staff can tell visitors apart
without seeing the key, which would let them take over the visitor's chat.

The exchanges' list links to a dashboard (`ExchangeAdmin.dashboard_view`): charts of the log's last days, whose
figures `streaming.dashboard` aggregates in the database.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html

from streaming import dashboard
from streaming.models import Conversation, Exchange, ToolCall


@admin.display(description="prompt")
def short_prompt(exchange: Exchange) -> str:
    return truncatechars(exchange.prompt, 80)


@admin.display(description="user or session")
def who(row: Conversation | Exchange) -> str:
    """The user, or the client with its hash cut short: a dozen hex digits tell visitors apart in a list."""
    if row.user_id is not None:
        return str(row.user)
    kind, _, name = row.client.partition(":")
    return f"{kind}:{name[:12]}…" if len(name) > 12 else row.client


class ReadOnly:
    """The log is a record of what happened; nobody edits it from the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ExchangeInline(ReadOnly, admin.TabularInline):
    model = Exchange
    fields = ["created", "status", short_prompt, "model", "completion_tokens"]
    readonly_fields = fields
    show_change_link = True
    extra = 0
    ordering = ["created"]


def preformatted(text: str) -> str:
    """Text as written, escaped: prompts, answers and what a model wrote to a tool are never markup here."""
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)


class ToolCallInline(ReadOnly, admin.StackedInline):
    """The tool calls of an exchange, in the order the model made them; arguments and results are shown inert."""

    model = ToolCall
    fields = [
        ("round", "name", "status", "duration_ms"),
        "arguments_text",
        "result_text",
        ("error_code", "error_message"),
    ]
    readonly_fields = [field for line in fields for field in (line if isinstance(line, tuple) else [line])]
    ordering = ["position"]
    extra = 0

    @admin.display(description="arguments")
    def arguments_text(self, call: ToolCall) -> str:
        return preformatted(call.arguments)

    @admin.display(description="result")
    def result_text(self, call: ToolCall) -> str:
        return preformatted(call.result)


class TakenOver(admin.SimpleListFilter):
    """Exchanges another worker went on with after theirs died or restarted (`STREAMING_TAKEOVER`), or not."""

    title = "taken over"
    parameter_name = "taken_over"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Exchange]) -> QuerySet[Exchange]:
        if self.value() == "yes":
            return queryset.filter(takeovers__gt=0)
        if self.value() == "no":
            return queryset.filter(takeovers=0)
        return queryset


@admin.register(Exchange)
class ExchangeAdmin(ReadOnly, admin.ModelAdmin):
    list_display = [
        "created",
        short_prompt,
        who,
        "model",
        "status",
        "feedback",
        "finish_reason",
        "first_output_ms",
        "ttft_ms",
        "duration_ms",
        "prompt_tokens",
        "completion_tokens",
        "counted_tokens",
    ]
    list_filter = [
        "status",
        "feedback",
        "model",
        "finish_reason",
        "demo",
        TakenOver,
        ("created", admin.DateFieldListFilter),
    ]
    search_fields = ["prompt", "answer", "feedback_comment"]
    date_hierarchy = "created"
    list_select_related = ["user"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "conversation",
                    "parent",
                    "user",
                    "session_key",
                    "address",
                    "client",
                    "request",
                    "created",
                    "finished",
                ]
            },
        ),
        ("Request", {"fields": ["model", "demo", "parameters", "prompt_text"]}),
        ("Reasoning", {"fields": ["reasoning_text"], "classes": ["collapse"]}),
        (
            "Answer",
            {
                "fields": [
                    "status",
                    "finish_reason",
                    "error_code",
                    "error_message",
                    "answer_text",
                    "last_seq",
                    "worker",
                    "takeovers",
                ]
            },
        ),
        ("Feedback", {"fields": ["feedback", "feedback_comment_text", "feedback_at"]}),
        (
            "Timing and usage",
            {
                "fields": [
                    "first_output_ms",
                    "ttft_ms",
                    "duration_ms",
                    "prompt_tokens",
                    "completion_tokens",
                    "counted_tokens",
                ]
            },
        ),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    inlines = [ToolCallInline]

    @admin.display(description="prompt")
    def prompt_text(self, exchange: Exchange) -> str:
        return preformatted(exchange.prompt)

    @admin.display(description="reasoning")
    def reasoning_text(self, exchange: Exchange) -> str:
        return preformatted(exchange.reasoning)

    @admin.display(description="answer")
    def answer_text(self, exchange: Exchange) -> str:
        return preformatted(exchange.answer)

    @admin.display(description="comment")
    def feedback_comment_text(self, exchange: Exchange) -> str:
        return preformatted(exchange.feedback_comment)

    def get_urls(self) -> list[URLPattern]:
        page = path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="streaming_exchange_dashboard")
        return [page, *super().get_urls()]

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        """The staff dashboard: charts of the log's last days (`streaming.dashboard`), for whoever may view it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        figures = dashboard.dashboard_figures()
        for row in figures["clients"]:
            # As the log's lists show a client: `who` asks `user_id` only whether there is a user.
            row["label"] = who(SimpleNamespace(user_id=row["user"], user=row["user"], client=row["client"]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Dashboard",
            "figures": figures,
        }
        return TemplateResponse(request, "admin/streaming/exchange/dashboard.html", context)


@admin.register(Conversation)
class ConversationAdmin(ReadOnly, admin.ModelAdmin):
    # Conversations their client deleted stay in the log: they show here with the time they were deleted.
    list_display = ["title", who, "created", "updated", "deleted"]
    list_filter = [("deleted", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["title"]
    inlines = [ExchangeInline]
