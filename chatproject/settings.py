"""Settings for the chat project, read once from the environment.

Every setting the project reads from the environment is listed in the README's configuration table and in
`.env.example`, each with its default. The defaults run the app on a laptop (SQLite, in-memory channel layer, the
built-in demo model); production sets `DJANGO_SECRET_KEY` and `DJANGO_ALLOWED_HOSTS` and keeps debug off.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name).lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}.")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


# --- Django core -------------------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string, or set DJANGO_DEBUG=1 for development."
        )
    SECRET_KEY = "django-insecure-development-only-key"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",  # first: its runserver serves HTTP and WebSocket
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic",
    "django.contrib.staticfiles",
    "channels",
    "streaming",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatproject.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "chatproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE_URL: any URL dj-database-url understands; absent means a SQLite file beside manage.py.
# Connections persist (DATABASE_CONN_MAX_AGE seconds): every stream writes twice, through the one thread that
# Channels runs database calls in, and opening a PostgreSQL connection per write made starts queue up under load.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "streaming:chat"
LOGOUT_REDIRECT_URL = "streaming:chat"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: the app's own (its Vite bundle), served by ServeStatic under ASGI -------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "servestatic.storage.CompressedManifestStaticFilesStorage"
    },
}
# In debug, ServeStatic finds files where they are; in production it serves what collectstatic gathered.
SERVESTATIC_AUTOREFRESH = DEBUG
SERVESTATIC_USE_FINDERS = DEBUG

# --- Security: production defaults unless debug --------------------------------------------------------------------

SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind the reverse proxy that terminates TLS; it must overwrite this header, never pass a client's through.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
# The JSON API answers a failed CSRF check with JSON (`csrf_failed`); other pages get Django's own page.
CSRF_FAILURE_VIEW = "streaming.views.csrf_failure"

# --- Channels -------------------------------------------------------------------------------------------------------

# How many messages one channel may hold before the in-memory layer drops what is sent to it. The relay sends what
# has arrived as one message, so a socket holds at most a few per stream; the margin covers slow sockets.
CHANNEL_CAPACITY = env_int("CHANNEL_CAPACITY", 1000)
REDIS_URL = env_str("REDIS_URL")
# redis-py 8 times a socket read out after 5 s by default, and channels-redis 4.3 blocks for 5 s waiting for
# messages, so idle consumers died with TimeoutError (django/channels_redis#422). Reads may wait longer than any
# wait we make; a periodic health check finds dead connections instead.
REDIS_CONNECTION_OPTIONS = {"socket_timeout": 30, "socket_connect_timeout": 5, "health_check_interval": 10}
if REDIS_URL:
    # The pub/sub layer, not the core one: the core layer drops group messages silently once a channel holds
    # `capacity` of them, and a dropped delta is one the client never hears about. Pub/sub has no such limit, and
    # delivers a group message with one PUBLISH instead of a write per member. What it does not keep, a message
    # for a socket that is not connected, each stream's record (streaming.deployment.shared) keeps.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "streaming.deployment.redis_layer.RedisLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, **REDIS_CONNECTION_OPTIONS}]},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "streaming.deployment.layers.LocalChannelLayer",
            "CONFIG": {"capacity": CHANNEL_CAPACITY},
        }
    }

# --- The model ------------------------------------------------------------------------------------------------------

# No key means the built-in demo model answers; a key is never ignored in favour of the demo.
STREAMING_OPENAI_API_KEY = env_str("OPENAI_API_KEY")
STREAMING_OPENAI_BASE_URL = env_str("OPENAI_BASE_URL") or None
# "chat" (Chat Completions, any OpenAI-compatible server) or "responses" (OpenAI's Responses API).
STREAMING_OPENAI_API = env_str("OPENAI_API", "chat")
# Models that reason, by name prefix: on the Responses API asked for reasoning summaries, and sent no temperature.
STREAMING_REASONING_MODELS = env_list("STREAMING_REASONING_MODELS", ["gpt-5", "o1", "o3", "o4"])
STREAMING_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
STREAMING_MODELS = env_list("OPENAI_MODELS", [STREAMING_MODEL])
# Seconds to wait for the provider to connect or to send the next piece of an answer.
STREAMING_OPENAI_TIMEOUT = env_int("OPENAI_TIMEOUT", 60)
# How often the SDK retries a failed request (429, 5xx, connection errors) before the first token.
STREAMING_OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 2)
STREAMING_DEMO_TOKENS_PER_SECOND = env_int("DEMO_TOKENS_PER_SECOND", 40)
# Models whose chat template writes `<think>` itself, so that their content starts as reasoning until `</think>`.
STREAMING_THINKING_MODELS = env_list("STREAMING_THINKING_MODELS", [])
# A dotted path to a function `(*, client, conversation) -> str | None` whose answer is every prompt's system
# instruction; while one is named, clients may not send their own (`streaming.instructions`). Empty: they may.
STREAMING_SYSTEM_INSTRUCTION = env_str("STREAMING_SYSTEM_INSTRUCTION") or None
# The host's hooks (docs/embedding.md), as dotted paths: who may chat, which tools a client is offered, its budget.
STREAMING_CLIENT = env_str("STREAMING_CLIENT", "streaming.clients.default_client")
STREAMING_OFFERED_TOOLS = env_str("STREAMING_OFFERED_TOOLS") or None
STREAMING_BUDGET = env_str("STREAMING_BUDGET") or None

# --- Streaming limits -------------------------------------------------------------------------------------------------

STREAMING_REQUIRE_LOGIN = env_bool("STREAMING_REQUIRE_LOGIN", not DEBUG)
STREAMING_MAX_PROMPT_CHARS = env_int("STREAMING_MAX_PROMPT_CHARS", 32_000)
# Characters of a conversation the model is sent (about 4 per token): the oldest whole turns beyond it are left out.
STREAMING_HISTORY_CHARS = env_int("STREAMING_HISTORY_CHARS", 48_000)
STREAMING_MAX_TOKENS = env_int("STREAMING_MAX_TOKENS", 4096)
STREAMING_MAX_STREAMS = env_int("STREAMING_MAX_STREAMS", 3)
# Budgets per client (`streaming.budgets`): 0 or empty is no limit.
STREAMING_PROMPTS_PER_MINUTE = env_int("STREAMING_PROMPTS_PER_MINUTE", 0) or None
STREAMING_TOKENS_PER_DAY = env_int("STREAMING_TOKENS_PER_DAY", 0) or None
STREAMING_MAX_FRAME_BYTES = env_int("STREAMING_MAX_FRAME_BYTES", 256 * 1024)
# A stream is stopped after this many seconds, whether or not anyone still watches it.
STREAMING_MAX_SECONDS = env_int("STREAMING_MAX_SECONDS", 600)
# How many deltas may wait to be sent before reading from the model pauses (backpressure, bounded memory).
STREAMING_BUFFER_DELTAS = env_int("STREAMING_BUFFER_DELTAS", 1024)
# Deltas this many milliseconds late (on the way to a socket, or read by an event loop this late) make a stream say
# `busy`: the server is overloaded.
STREAMING_BUSY_MS = env_int("STREAMING_BUSY_MS", 250)
# While the worker runs late, a stream that has shown its first words waits before each read of the model, at most
# this many ms (four times that while new prompts await theirs), so that new prompts get their first words first;
# 0: never.
STREAMING_LATE_READ_MS = env_int("STREAMING_LATE_READ_MS", 250)
# How long the deltas of a stream stay available for `resume` after the last one (then the log serves them).
STREAMING_REPLAY_SECONDS = env_int("STREAMING_REPLAY_SECONDS", 600)
# A stream whose client has had no socket open for this long is stopped and logged as interrupted.
STREAMING_DETACHED_SECONDS = env_int("STREAMING_DETACHED_SECONDS", 120)
# How long a socket counts as open after it last said so; sockets say so three times per period.
STREAMING_PRESENCE_SECONDS = env_int("STREAMING_PRESENCE_SECONDS", 15)
# A worker not heard from for this long is dead: its streams are logged as interrupted and their clients told.
STREAMING_WORKER_TIMEOUT = env_int("STREAMING_WORKER_TIMEOUT", 10)
# On SIGTERM, how long running streams may go on before they are stopped and logged as interrupted.
STREAMING_SHUTDOWN_GRACE = env_int("STREAMING_SHUTDOWN_GRACE", 30)
# Answers outlive their worker: with OPENAI_API=responses and Redis, another worker re-attaches to the provider's
# background response of a worker that died or drained (streaming.relay.handover).
STREAMING_TAKEOVER = env_bool("STREAMING_TAKEOVER", False)
# A socket that has heard nothing of a stream it follows for this long looks it up in the stream's record and the log,
# so that an end lost on the way (a Redis restart) still reaches it.
STREAMING_RECHECK_SECONDS = env_int("STREAMING_RECHECK_SECONDS", 5)

# --- Tools ------------------------------------------------------------------------------------------------------------

# Dotted paths of the functions (decorated with `streaming.tools.tool`) that a model may call.
STREAMING_TOOLS = env_list(
    "STREAMING_TOOLS", ["streaming.tools.builtin.current_time", "streaming.tools.builtin.search_history"]
)
# Models offered tools: empty is every model on OpenAI's API and the demo, none on other servers; or names, `*`, `none`.
STREAMING_TOOL_MODELS = env_list("STREAMING_TOOL_MODELS", [])
# Rounds of tool calls in one answer; then one last request, with tools switched off, asks for the answer.
STREAMING_MAX_TOOL_ROUNDS = env_int("STREAMING_MAX_TOOL_ROUNDS", 4)
# Seconds a tool call may take before the model is told it failed (`tool_timeout`).
STREAMING_TOOL_SECONDS = env_int("STREAMING_TOOL_SECONDS", 10)
# Threads that run sync tools, apart from the database thread; more calls than this wait their turn.
STREAMING_TOOL_THREADS = env_int("STREAMING_TOOL_THREADS", 4)
# Tool calls run per model round; the model is told the others were not run (`too_many_calls`).
STREAMING_TOOL_CALLS_PER_ROUND = env_int("STREAMING_TOOL_CALLS_PER_ROUND", 8)
# Longest arguments (characters of JSON) a model may write for one call (`invalid_arguments` beyond).
STREAMING_TOOL_ARGUMENT_CHARS = env_int("STREAMING_TOOL_ARGUMENT_CHARS", 16_384)
# Longest tool result the model is sent; a longer one is cut, and says so.
STREAMING_TOOL_RESULT_CHARS = env_int("STREAMING_TOOL_RESULT_CHARS", 16_384)

# --- Metrics ----------------------------------------------------------------------------------------------------------

# The bearer token Prometheus must send to scrape `/metrics`; empty: no metrics endpoint.
STREAMING_METRICS_TOKEN = env_str("STREAMING_METRICS_TOKEN") or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx2": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        # runserver prints each request itself; without this every line would appear twice.
        "django.channels.server": {"propagate": False},
    },
}
