"""Running a call the model wrote: the one way a tool is ever called on a model's behalf.

Everything about the call is untrusted input: the name (a model may name a tool it was not offered), the size and
shape of the arguments, what the tool then does with them. So the caller's right to the tool is checked again here,
when the call runs; arguments are validated by the tool's pydantic model; and what comes back to the model and the
page is the result, a tool's own `ToolError` message, or a fixed message, never an exception's text.

Sync tools run in a small thread pool of this module's own: Channels runs every `database_sync_to_async` call on
one thread, and a tool that blocks there would stall every stream's database writes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pydantic
from django.contrib.auth import get_user_model
from django.core.signals import setting_changed
from django.db import close_old_connections
from django.dispatch import receiver

from streaming import errors
from streaming.clients import Client as Caller
from streaming.conf import app_settings
from streaming.relay.tool_outcome import (
    DONE,
    INVALID_ARGUMENTS,
    TOOL_FAILED,
    TOOL_NOT_OFFERED,
    TOOL_TIMEOUT,
    Outcome,
)
from streaming.tools.definition import Tool, ToolError
from streaming.tools.registry import registered_tools

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000  # a `ToolError` message is a sentence for the model and the page, not a payload

_pool: ThreadPoolExecutor | None = None


async def run_call(*, name: str, arguments: str, caller: Caller, offered: Collection[str]) -> Outcome:
    """Run the call the model wrote to the tool `name` with the JSON `arguments`, on behalf of `caller`.

    `offered` are the names of the tools this caller was offered for the request. A failure of any kind is a failed
    `Outcome`, except cancellation, which propagates: an async tool is cancelled with it; a sync one cannot be, so
    the wait for it stops and its eventual result is discarded.
    """
    started = time.monotonic()
    registered = registered_tools().get(name) if name in offered else None
    if registered is None or not registered.allows(caller) or not await _still_allowed(registered, caller):
        return Outcome.failure(TOOL_NOT_OFFERED, duration_ms=_since(started))
    try:
        values = _validated(registered, arguments)
    except _Invalid as invalid:
        return Outcome.failure(INVALID_ARGUMENTS, invalid.message, duration_ms=_since(started))
    if registered.caller_parameter:
        values[registered.caller_parameter] = caller
    try:
        async with asyncio.timeout(app_settings.TOOL_SECONDS) as deadline:
            value = await _call(registered, values)
        result = _as_text(value)
    except ToolError as failure:
        message = _sendable(str(failure.message))[:MAX_ERROR_CHARS]
        return Outcome.failure(TOOL_FAILED, message, duration_ms=_since(started))
    except TimeoutError as exc:
        if deadline.expired():
            logger.warning("tool %s took longer than %ss and was given up", name, app_settings.TOOL_SECONDS)
            return Outcome.failure(TOOL_TIMEOUT, duration_ms=_since(started))
        return _failed(name, exc, started)  # the tool's own time-out, not ours
    except Exception as exc:
        return _failed(name, exc, started)
    return Outcome(DONE, result=result, duration_ms=_since(started))


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _failed(name: str, exc: Exception, started: float) -> Outcome:
    logger.error("tool %s failed: %s at:\n%s", name, errors.describe(exc), errors.where(exc))
    return Outcome.failure(TOOL_FAILED, duration_ms=_since(started))


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _validated(registered: Tool, arguments: str) -> dict[str, Any]:
    """The keyword arguments for the tool, from what the model wrote; raises `_Invalid` with what the model may read."""
    if len(arguments) > app_settings.TOOL_ARGUMENT_CHARS:
        raise _Invalid(f"The arguments are longer than the {app_settings.TOOL_ARGUMENT_CHARS} characters allowed.")
    try:
        # Some servers send "" for a call without arguments. orjson, unlike json, refuses a lone surrogate
        # ("\ud800"), which a tool echoing it would turn into text that cannot be sent or saved.
        decoded = orjson.loads(arguments) if arguments.strip() else {}
    except (ValueError, RecursionError):
        raise _Invalid("The arguments are not valid JSON.") from None
    if not isinstance(decoded, dict):
        raise _Invalid("The arguments must be a JSON object.")
    try:
        validated = registered.arguments.model_validate(decoded)
    except pydantic.ValidationError as exc:
        raise _Invalid(_invalid_message(registered, exc)) from None
    return {field: getattr(validated, field) for field in type(validated).model_fields}


def _invalid_message(registered: Tool, exc: pydantic.ValidationError) -> str:
    """Which parameters failed, named only when they are the tool's own: an unknown key is the model's text."""
    known = registered.arguments.model_fields
    failing = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"] and e["loc"][0] in known})
    unknown = any(e["type"] == "extra_forbidden" for e in exc.errors())
    message = "The arguments do not fit the tool's parameters"
    if failing:
        message += f": check {', '.join(failing)}"
    if unknown:
        message += f"{';' if failing else ':'} it takes no other parameters"
    return message + "."


async def _still_allowed(registered: Tool, caller: Caller) -> bool:
    """For a tool that needs a login or staff, the user as the database has them now: the caller was found when its
    socket connected, and a user deactivated or no longer staff since must not keep the tool."""
    if not registered.login_required:
        return True
    loop = asyncio.get_running_loop()
    rights = await loop.run_in_executor(_executor(), _rights_of, caller.user_id)
    return rights is not None and rights[0] and (rights[1] or not registered.staff_required)


def _rights_of(user_id: int | None) -> tuple[bool, bool] | None:
    """(is_active, is_staff) of the user, or None if there is no such user."""
    close_old_connections()
    try:
        return get_user_model().objects.filter(pk=user_id).values_list("is_active", "is_staff").first()
    finally:
        close_old_connections()


async def _call(registered: Tool, values: Mapping[str, Any]) -> Any:
    if registered.is_async:
        return await registered.function(**values)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(_call_sync, registered.function, values))


def _call_sync(function: Any, values: Mapping[str, Any]) -> Any:
    # As around a Django request: a tool may use the ORM, and this thread's connection must not outlive its welcome.
    close_old_connections()
    try:
        return function(**values)
    finally:
        close_old_connections()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=app_settings.TOOL_THREADS, thread_name_prefix="streaming-tool")
    return _pool


@receiver(setting_changed)
def _forget_pool(*, setting: str, **kwargs: Any) -> None:
    global _pool
    if setting == "STREAMING_TOOL_THREADS" and _pool is not None:
        _pool.shutdown(wait=False)  # its threads end once their calls return
        _pool = None


def _as_text(value: Any) -> str:
    """The result as the model reads it: text, or JSON; cut to `STREAMING_TOOL_RESULT_CHARS`, saying so."""
    text = _sendable(value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False))
    limit = app_settings.TOOL_RESULT_CHARS
    if len(text) <= limit:
        return text
    marker = f"\n[cut: the result had {len(text)} characters, more than the {limit} allowed]"
    return text[: max(limit - len(marker), 0)] + marker


def _sendable(text: str) -> str:
    """`text` as valid UTF-8: a lone surrogate from a tool would stop the next request and the save."""
    return text.encode("utf-8", "replace").decode()
