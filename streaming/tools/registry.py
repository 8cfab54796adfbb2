"""Which tools there are, and which a caller is offered with a model.

The registry is what `STREAMING_TOOLS` names, imported once and forgotten when that setting changes. Offering a tool
is not permission to run it: `streaming.tools.running.run_call` checks again when a call arrives.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from streaming.clients import Client as Caller
from streaming.conf import app_settings
from streaming.provider import upstream
from streaming.tools.definition import Tool, tool_of

_OPENAI_HOST = "api.openai.com"

_registry: dict[str, Tool] | None = None


def registered_tools() -> dict[str, Tool]:
    """Every tool `STREAMING_TOOLS` names, by name, in its order; a wrong entry raises `ImproperlyConfigured`."""
    global _registry
    if _registry is None:
        _registry = _load(app_settings.TOOLS)
    return _registry


def _load(paths: list[str]) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    for path in paths:
        try:
            function = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(f"STREAMING_TOOLS names {path!r}, which cannot be imported") from exc
        try:
            registered = tool_of(function)
        except TypeError:
            raise ImproperlyConfigured(f"STREAMING_TOOLS names {path!r}, which is not decorated with @tool") from None
        if registered.name in tools:
            raise ImproperlyConfigured(f"STREAMING_TOOLS names two tools called {registered.name!r}")
        tools[registered.name] = registered
    return tools


@receiver(setting_changed)
def _forget_tools(*, setting: str, **kwargs: Any) -> None:
    global _registry
    if setting == "STREAMING_TOOLS":
        _registry = None


def _on_openai() -> bool:
    base_url = app_settings.OPENAI_BASE_URL
    return not base_url or urlsplit(base_url).hostname == _OPENAI_HOST


def model_gets_tools(model: str) -> bool:
    """Whether requests to `model` carry tools (`STREAMING_TOOL_MODELS`).

    Empty means automatic: the demo model, and every model on OpenAI's own API, but none on another server, where
    Ollama and vLLM refuse a request with tools for a model or a server set up without tool support. Otherwise a
    list of model names, `*` for every model, or `none`.
    """
    models = app_settings.TOOL_MODELS
    if models:
        return "*" in models or model in models
    if upstream.demo_enabled():
        return model == upstream.DEMO_MODEL
    return _on_openai()


def offered_tools(*, caller: Caller, model: str) -> list[Tool]:
    """The tools this caller is offered when asking `model`, in `STREAMING_TOOLS` order: those its login allows,
    and of those what the host's `STREAMING_OFFERED_TOOLS` keeps for it."""
    if not model_gets_tools(model):
        return []
    allowed = [registered for registered in registered_tools().values() if registered.allows(caller)]
    if app_settings.OFFERED_TOOLS is None:
        return allowed
    kept = {id(kept) for kept in _host_rule(app_settings.OFFERED_TOOLS)(client=caller, tools=list(allowed))}
    return [registered for registered in allowed if id(registered) in kept]  # never one it was not allowed


@functools.cache
def _host_rule(path: str) -> Any:
    """A host's function, named in a setting by its dotted path (a wrong one is caught by the system checks)."""
    return import_string(path)


def strict_schemas() -> bool:
    """Whether to send strict schemas: OpenAI's own API supports them; other servers may reject or ignore them."""
    return not upstream.demo_enabled() and _on_openai()
