"""Errors a client may be told about, each with a stable `code` from docs/protocol.md.

Code anywhere in the app raises these; only `protocol.error_frame` turns one into what a client sees, so the wording
a person reads and the codes a program matches live here and nowhere else. Anything that is not a `StreamingError`
reaches a client as `internal_error` with a fixed message: tracebacks and secrets stay in the server log.
"""

from __future__ import annotations

import traceback

import httpx2  # the openai SDK's HTTP library: a response cut off mid-stream surfaces as its TransportError
import openai


class StreamingError(Exception):
    """Something went wrong that the client should hear about, in words a person can act on."""

    code = "internal_error"
    retryable = True
    default_message = "Something went wrong on the server. Try again in a moment."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class BadRequest(StreamingError):
    """The client sent a frame the protocol does not allow."""

    code = "bad_request"
    retryable = False
    default_message = "The server could not understand that message."


class NotAllowed(StreamingError):
    """The client may not do what it asked."""

    code = "not_allowed"
    retryable = False
    default_message = "You are not allowed to do that."


class LoginRequired(NotAllowed):
    """Not allowed until the person logs in (HTTP 401; the socket closes with 4401)."""

    default_message = "Log in to chat."


class StillStreaming(NotAllowed):
    """The answer is still being written: it can be rated once it has ended (HTTP 409)."""

    default_message = "This answer is still being written. Rate it once it has ended."


class CsrfFailed(StreamingError):
    """A request to the HTTP API that changes something came without the page's CSRF token, or with a stale one
    (HTTP 403; `views.csrf_failure`)."""

    code = "csrf_failed"
    retryable = False
    default_message = "The page's security token is missing or out of date. Reload the page and try again."


class NotFound(StreamingError):
    """The conversation or stream does not exist, or belongs to another client (we do not say which)."""

    code = "not_found"
    retryable = False
    default_message = "There is no such conversation or stream."


class OverLimit(StreamingError):
    """The client is over one of its budgets (`streaming.budgets`); `retry_after_ms` says when it may try again."""

    retryable = True

    def __init__(self, message: str | None = None, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = max(0, retry_after_ms)


class TooManyPrompts(OverLimit):
    code = "too_many_prompts"
    default_message = "You have sent too many prompts in the last minute."


class OverTokenBudget(OverLimit):
    code = "over_token_budget"
    default_message = "You have used today's budget of tokens."


class TooManyStreams(StreamingError):
    """The client already runs as many streams as it may."""

    code = "too_many_streams"
    retryable = True
    default_message = "Too many answers are streaming at once. Wait for one to finish, or stop one."


class RateLimited(StreamingError):
    """The model provider answered 429."""

    code = "rate_limited"
    retryable = True
    default_message = "The model provider is rate limiting requests. Try again in a moment."


class UpstreamUnavailable(StreamingError):
    """The model provider could not be reached, timed out, failed with 5xx, or dropped the answer."""

    code = "upstream_unavailable"
    retryable = True
    default_message = "The model provider is unavailable right now. Try again in a moment."


class UpstreamError(StreamingError):
    """The model provider refused the request; retrying the same request will not help."""

    code = "upstream_error"
    retryable = False
    default_message = "The model provider refused the request."


class PromptTooLong(StreamingError):
    """The prompt with its system instruction is longer than the history budget (`STREAMING_HISTORY_CHARS`)."""

    code = "prompt_too_long"
    retryable = False
    default_message = "This message is too long for the model. Shorten it and send it again."


class TimeLimit(StreamingError):
    """The stream ran longer than `STREAMING_MAX_SECONDS`."""

    code = "time_limit"
    retryable = False
    default_message = "The answer took longer than the server allows and was stopped."


class Interrupted(StreamingError):
    """The stream was stopped by the server: its worker stopped or died, or no socket of the client was open."""

    code = "interrupted"
    retryable = True
    default_message = "The server stopped this answer before it was finished. The answer so far is kept."


class ShuttingDown(StreamingError):
    """This worker is restarting and takes no new prompts; another one will."""

    code = "shutting_down"
    retryable = True
    default_message = "This server is restarting. Try again in a moment."


class StoreUnavailable(StreamingError):
    """Redis, which carries every frame between workers, failed or timed out: not the provider's fault."""

    default_message = "The server lost its connection to its message store. Try again in a moment."


class NotRecorded(StreamingError):
    """The database did not take the prompt's row, after its answer had begun: the answer is stopped, and not logged."""

    default_message = "The server could not record this prompt, so its answer was stopped. Try again in a moment."


class Truncated(UpstreamUnavailable):
    """The provider's answer ended without saying it was finished (no finish reason, no `[DONE]`): a proxy cut it."""

    default_message = "The model provider's answer was cut off before it was finished. The answer so far is kept."


class UpstreamStreamError(Exception):
    """The provider sent an error event in the middle of an answer; `from_upstream` says what a client hears."""

    def __init__(self, error: object) -> None:
        self.error = error if isinstance(error, dict) else {"message": str(error)}
        super().__init__("error event in the answer's stream")  # the provider's text may hold secrets: not kept here


# One class per code: the subclasses that only refine a message share their parent's code and are not listed.
CODES = {
    error.code: error for error in [StreamingError, *StreamingError.__subclasses__()] if error.code != "internal_error"
}
CODES["internal_error"] = StreamingError


def from_upstream(exc: Exception) -> StreamingError:
    """Translate an `openai` SDK exception into the error the client hears.

    The provider's own message is deliberately not passed on: it can name the key, the account or the gateway.
    """
    if isinstance(exc, StreamingError):
        return exc
    if isinstance(exc, UpstreamStreamError):
        if _is_server_side(exc.error):
            return UpstreamUnavailable("The model provider failed in the middle of the answer. Try again in a moment.")
        return UpstreamError("The model provider reported an error in the middle of the answer.")
    if isinstance(exc, openai.RateLimitError):
        return RateLimited()
    if is_context_overflow(exc):
        return PromptTooLong()
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return UpstreamError(
            "The model provider rejected the server's credentials. An operator needs to check OPENAI_API_KEY."
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return UpstreamUnavailable()
        return UpstreamError(f"The model provider refused the request (HTTP {exc.status_code}).")
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamUnavailable("The model provider did not answer in time. Try again in a moment.")
    if isinstance(exc, openai.APIConnectionError | openai.APIError | httpx2.TransportError):
        # APIError without a status is what the SDK raises for a stream cut off mid-answer.
        return UpstreamUnavailable("The connection to the model provider was lost. Try again in a moment.")
    return StreamingError()


def is_context_overflow(exc: Exception) -> bool:
    """Whether the provider refused the request as longer than the model's context: OpenAI and DeepSeek say so with
    the code `context_length_exceeded`, vLLM and others only in the message."""
    if not isinstance(exc, openai.BadRequestError):
        return False
    return exc.code == "context_length_exceeded" or "maximum context length" in str(exc.message).lower()


def _is_server_side(error: dict) -> bool:
    """Whether a mid-stream error event is the provider's own failure (retryable): a 5xx `code` or a `server_error`
    type, as OpenAI, vLLM and OpenRouter send them (the code may be a number or a numeric string)."""
    code = error.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    return (isinstance(code, int) and 500 <= code <= 599) or error.get("type") == "server_error"


def where(exc: BaseException) -> str:
    """The frames an unexpected exception passed through, without its message (see `describe`), for the log."""
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


def describe(exc: BaseException) -> str:
    """What the server log says of a failure: its type and HTTP status, never its text.

    The SDK's exception text holds the provider's error body, which OpenAI-compatible gateways fill with the request's
    key; a Redis or database error's text can name hosts and credentials. The type and status are enough to act on.
    """
    status = getattr(exc, "status_code", None)
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"{name} (HTTP {status})" if status is not None else name
