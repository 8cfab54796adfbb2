"""A streamed answer's request, sent straight to the process's transport, without the SDK's request machinery.

Through the SDK (`with_streaming_response.create`), an answer of two tokens cost 790 to 1,070 µs of the event loop,
nearly all of it the request: the SDK's request options, the walk of its parameters against its schemas, httpx2's
client, the adapter to aiohttp. Sent straight on the same aiohttp session it costs 130 to 150 µs (`bench.micro`). In
a burst of hundreds of prompts that was the largest cost of each before it went upstream (docs/performance.md).

The SDK's client still says what a request is and what its failures are: the base URL, the headers (`default_headers`
carries the key, the organization and the project), the timeout, and the retries (`OPENAI_MAX_RETRIES`: connection
failures, timeouts, 408, 409, 429 and 5xx, after its backoff or the provider's `Retry-After`). A failure raises the
SDK's own exception types, which `errors.from_upstream` maps to what a client hears. The SDK's functions that decide
a retry and build its exception are private (`_should_retry`, `_calculate_retry_timeout`, `_make_status_error`), so
`retry_delay` and `status_error` say the same again from its public types; tests/test_direct.py holds them to it.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx2
import openai
import orjson

from streaming.provider.transport import Reply, open_reply

# The SDK's backoff: 0.5 s doubled at each retry up to 8 s, less up to a quarter at random; a provider's
# `Retry-After` of up to two minutes instead.
FIRST_RETRY_SECONDS = 0.5
LONGEST_RETRY_SECONDS = 8.0
LONGEST_RETRY_AFTER_SECONDS = 120.0

_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


@dataclass(frozen=True)
class Call:
    """A request whose answer streams: its method, its path under the base URL, and its JSON body or its query."""

    method: Literal["GET", "POST"]
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class Provider:
    """What every request to the provider carries, read once from the SDK's client, and the transport under it."""

    transport: httpx2.AsyncBaseTransport
    base_url: str  # ends with "/"
    headers: dict[str, str]
    timeout: dict[str, float | None]
    max_retries: int

    @classmethod
    def of_client(cls, client: openai.AsyncOpenAI, transport: httpx2.AsyncBaseTransport) -> Provider:
        every = {**client.default_headers, **client.auth_headers}
        headers = {name: value for name, value in every.items() if isinstance(value, str)}  # not the SDK's `Omit`s
        headers["Accept-Encoding"] = "identity"  # the body is read as it comes, as lines of text: never compressed
        limit = client.timeout
        seconds = limit if isinstance(limit, int | float) else None
        timeout = (
            limit.as_dict()
            if isinstance(limit, httpx2.Timeout)
            else dict.fromkeys(("connect", "read", "write", "pool"), seconds)
        )
        base_url = str(client.base_url).rstrip("/") + "/"
        return cls(transport, base_url, headers, timeout, client.max_retries)

    def url(self, call: Call) -> str:
        url = self.base_url + call.path
        return f"{url}?{urlencode(call.params)}" if call.params else url


@asynccontextmanager
async def open_stream(call: Call, provider: Provider) -> AsyncIterator[Reply]:
    """The reply to `call`, once the provider has accepted it (a 2xx status), to read as it arrives; leaving the
    context closes it, and with it the provider's generation if it was not finished.

    Raises, after the retries the SDK would make: `openai.APIStatusError` (its subclass for the status),
    `openai.APITimeoutError`, `openai.APIConnectionError`.
    """
    reply = await _send(call, provider)
    try:
        yield reply
    finally:
        await reply.close()


async def _send(call: Call, provider: Provider) -> Reply:
    url, content = provider.url(call), None if call.body is None else orjson.dumps(call.body)
    attempt = 0
    while True:
        retries_left = attempt < provider.max_retries
        try:
            reply = await open_reply(
                provider.transport,
                call.method,
                url,
                headers=provider.headers,
                content=content,
                timeouts=provider.timeout,
            )
        except httpx2.TransportError as exc:
            if not retries_left:
                request = httpx2.Request(call.method, url)
                if isinstance(exc, httpx2.TimeoutException):
                    raise openai.APITimeoutError(request=request) from exc
                raise openai.APIConnectionError(request=request) from exc
            delay = retry_delay(attempt, None, None)
        else:
            if 200 <= reply.status < 300:
                return reply
            try:
                body = await reply.read()
            finally:
                await reply.close()
            delay = retry_delay(attempt, reply.status, reply.headers) if retries_left else None
            if delay is None:
                raise status_error(call.method, url, reply, body)
        await asyncio.sleep(delay)
        attempt += 1


def retry_delay(attempt: int, status: int | None, headers: Mapping[str, str] | None) -> float | None:
    """How long to wait before retry number `attempt` + 1, as the SDK would, after a response of `status` (None: the
    request got none); None when the response says not to retry: a status other than 408, 409, 429 and 5xx, or a
    `Retry-After` longer than two minutes, unless the provider says otherwise (`x-should-retry`)."""
    if status is None or headers is None:
        return _backoff(attempt)
    after = _retry_after(headers)
    should = headers.get("x-should-retry")
    if should == "false" or (after is not None and after > LONGEST_RETRY_AFTER_SECONDS):
        return None
    if should != "true" and not (status in (408, 409, 429) or status >= 500):
        return None
    return after if after is not None and after > 0 else _backoff(attempt)


def _backoff(attempt: int) -> float:
    return min(FIRST_RETRY_SECONDS * 2.0**attempt, LONGEST_RETRY_SECONDS) * (1 - 0.25 * random.random())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            seconds = float(headers.get(name, "")) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds):
            return seconds
    return None


def status_error(method: str, url: str, reply: Reply, body: bytes) -> openai.APIStatusError:
    """The SDK's exception for a refused request, as the SDK builds it: the error object of the body (or the body),
    and a message with the status and the provider's own message."""
    response = httpx2.Response(
        reply.status, headers=list(reply.headers.items()), content=body, request=httpx2.Request(method, url)
    )
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = response.text.strip() or None
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    message = f"Error code: {reply.status}"
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        message += f" - {error['message']}"
    kind = openai.InternalServerError if reply.status >= 500 else _STATUS_ERRORS.get(reply.status)
    return (kind or openai.APIStatusError)(message, response=response, body=error)
