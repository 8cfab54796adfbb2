"""The app's settings: each is a Django setting named `STREAMING_<NAME>`, with its default in `DEFAULTS` below.

A host project sets only what it changes. Code reads them from `app_settings` (`app_settings.MAX_STREAMS`), never
from `django.conf.settings`, so a default is written once, here. Each value is read on first use and kept; a test
that changes a setting (`override_settings`, pytest-django's `settings`) makes every one be read again, through
`setting_changed`. Some defaults follow other settings: `REQUIRE_LOGIN` is on unless `DEBUG`, `MODELS` is `[MODEL]`.

Dotted paths (`TOOLS`, `SYSTEM_INSTRUCTION`, `CLIENT`, `OFFERED_TOOLS`) are kept as strings here; the module that
calls each one imports it (`django.utils.module_loading.import_string`), once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

PREFIX = "STREAMING_"

DEFAULTS: dict[str, Any] = {
    # --- The model ---
    # The provider's API key; empty: the built-in demo model answers. A key is never ignored in favour of the demo.
    "OPENAI_API_KEY": "",
    # Any OpenAI-compatible server (a gateway, Ollama, vLLM, llama.cpp); None: OpenAI's own.
    "OPENAI_BASE_URL": None,
    # The API the model is asked through: "chat" (Chat Completions, which every OpenAI-compatible server speaks) or
    # "responses" (OpenAI's Responses API, the only one through which its reasoning models show their thinking).
    "OPENAI_API": "chat",
    # Models that reason, by name prefix: on the Responses API they are asked for reasoning summaries and sent no
    # temperature, which they refuse.
    "REASONING_MODELS": ["gpt-5", "o1", "o3", "o4"],
    # Seconds to wait for the provider to connect or to send the next piece of an answer.
    "OPENAI_TIMEOUT": 60,
    # Retries of a failed request (429, 5xx, connection errors) before the first token.
    "OPENAI_MAX_RETRIES": 2,
    # The default model, and the models a client may choose (None: only the default).
    "MODEL": "gpt-4o-mini",
    "MODELS": None,
    # How fast the demo model writes.
    "DEMO_TOKENS_PER_SECOND": 40,
    # Models whose chat template writes `<think>` itself: their content is reasoning until `</think>`.
    "THINKING_MODELS": [],
    # --- Who may chat, and how ---
    # Login required for the page, the API and the socket. None: on unless DEBUG.
    "REQUIRE_LOGIN": None,
    # A dotted path to `(*, user, session) -> Client | None`: who a request or socket is, or None for "may not
    # chat". The default is a logged-in user, or else the browser session (when login is not required).
    "CLIENT": "streaming.clients.default_client",
    # A dotted path to `(*, client, conversation) -> str | None`, whose answer is every prompt's system instruction;
    # while one is named, clients may not send their own. None: they may.
    "SYSTEM_INSTRUCTION": None,
    # The WebSocket's path, served by `streaming.routing.websocket_urlpatterns` and used by the page.
    "SOCKET_PATH": "/ws/chat/",
    # The page's frontend from Vite's dev server (`npm run dev`), e.g. "http://localhost:5173", for hot reload while
    # working on `frontend/`. None: the built bundle in the app's static files.
    "VITE_DEV_SERVER": None,
    # --- Limits ---
    "MAX_PROMPT_CHARS": 32_000,
    # Characters of a conversation the model is sent (about 4 per token); the oldest whole turns beyond are left out.
    "HISTORY_CHARS": 48_000,
    "MAX_TOKENS": 4096,
    # Streams one client may run at once.
    "MAX_STREAMS": 3,
    "MAX_FRAME_BYTES": 256 * 1024,
    # A stream is stopped after this many seconds, watched or not.
    "MAX_SECONDS": 600,
    # Deltas that may wait to be sent before reading from the model pauses (backpressure, bounded memory).
    "BUFFER_DELTAS": 1024,
    # Lateness (ms) at which a stream tells its client the server is overloaded (`busy`).
    "BUSY_MS": 250,
    # While the worker's event loop runs late, a stream that has shown its first words waits before each read of the
    # model, at most this many ms (four times that while new prompts await theirs), so that new prompts get their first
    # words first (`deployment.lag.give_way`). 0: never.
    "LATE_READ_MS": 250,
    # --- Budgets (`streaming.budgets`), counted per client; None: no limit ---
    "PROMPTS_PER_MINUTE": None,
    # Prompt and completion tokens as the model reports them, over every tool round; estimated when it reports none.
    "TOKENS_PER_DAY": None,
    # A dotted path to `(*, client) -> streaming.budgets.Budget`, for limits by group or plan. None: the two above.
    "BUDGET": None,
    # --- Several workers ---
    # Where the workers keep what they share (streams' records, presence, liveness). None: the Redis server of
    # the default channel layer, when it is a Redis layer with one host; otherwise this process's memory.
    "REDIS_URL": None,
    # Options for the connections to it (redis-py's), beside those in the URL.
    "REDIS_OPTIONS": {"socket_timeout": 30, "socket_connect_timeout": 5, "health_check_interval": 10},
    # How long a stream's record is kept beyond the longest a stream may run, for `resume`.
    "REPLAY_SECONDS": 600,
    # A stream no socket of its client watches for this long is stopped.
    "DETACHED_SECONDS": 120,
    # How long a socket counts as open after it last said so.
    "PRESENCE_SECONDS": 15,
    # A worker not heard from for this long is dead; its streams are logged interrupted.
    "WORKER_TIMEOUT": 10,
    # On SIGTERM, how long running streams may go on before they are stopped (or, with `TAKEOVER`, handed over).
    "SHUTDOWN_GRACE": 30,
    # Answers outlive their worker: on the Responses API, with Redis, each response runs in the provider's background
    # mode (`background` and `store` on: the provider keeps it) and a worker that dies or drains hands its answers to
    # another, which re-attaches to the response where the last relayed event left off. Off: many `/v1/responses`
    # servers have neither background mode nor `starting_after`.
    "TAKEOVER": False,
    # A socket that has heard nothing of a stream it follows for this long looks it up again.
    "RECHECK_SECONDS": 5,
    # --- Tools ---
    # Dotted paths of the functions (decorated with `streaming.tools.tool`) a model may call.
    "TOOLS": ["streaming.tools.builtin.current_time", "streaming.tools.builtin.search_history"],
    # A dotted path to `(*, client, tools) -> list of tools`: the tools offered to one client, of those its login
    # allows. None: all of them.
    "OFFERED_TOOLS": None,
    # Models offered tools: empty is every model on OpenAI's own API and the demo, none elsewhere; or names, `*`,
    # `none`.
    "TOOL_MODELS": [],
    "MAX_TOOL_ROUNDS": 4,
    "TOOL_SECONDS": 10,
    # Threads that run sync tools, apart from the database thread.
    "TOOL_THREADS": 4,
    "TOOL_CALLS_PER_ROUND": 8,
    "TOOL_ARGUMENT_CHARS": 16_384,
    "TOOL_RESULT_CHARS": 16_384,
    # --- Metrics ---
    # The bearer token a scrape of `/metrics` must send (`Authorization: Bearer <token>`). None: no endpoint (404).
    "METRICS_TOKEN": None,
}


class AppSettings:
    """`app_settings.NAME`: the Django setting `STREAMING_NAME`, or its default."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"There is no setting {PREFIX}{name}.")
        value = getattr(settings, PREFIX + name, DEFAULTS[name])
        value = _derived(name, value)
        self.__dict__[name] = value  # found as an attribute from now on: read once
        return value

    def reload(self) -> None:
        self.__dict__.clear()


def _derived(name: str, value: Any) -> Any:
    """The defaults that follow other settings."""
    if name == "REQUIRE_LOGIN" and value is None:
        return not settings.DEBUG
    if name == "MODELS" and not value:
        return [app_settings.MODEL]
    return value


app_settings = AppSettings()


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX) or setting in {"DEBUG", "CHANNEL_LAYERS"}:
        app_settings.reload()
