"""The chat page and the JSON the page reads its conversation list from; the stream itself is the WebSocket."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.middleware.csrf import get_token
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.views.decorators.http import require_GET

from streaming import protocol, selectors
from streaming.clients import Client, client_of
from streaming.errors import NotFound
from streaming.upstream import available_models, demo_enabled
from streaming.worker import worker


def login_required_unless_open(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login is required when `STREAMING_REQUIRE_LOGIN` is on (the default outside debug)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.STREAMING_REQUIRE_LOGIN and not request.user.is_authenticated:
            if request.path.startswith("/api/"):
                return JsonResponse({"error": "Log in to see your conversations."}, status=401)
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return guarded


def login_url(*, next_url: str) -> str:
    """`settings.LOGIN_URL` with `?next=` the page to come back to, as `redirect_to_login` builds it."""
    login, _, query = resolve_url(settings.LOGIN_URL).partition("?")
    params = QueryDict(query, mutable=True)
    params["next"] = next_url
    return f"{login}?{params.urlencode(safe='/')}"


def request_client(request: HttpRequest) -> Client:
    return client_of({"user": request.user, "session": request.session})


@require_GET
@login_required_unless_open
def chat(request: HttpRequest) -> HttpResponse:
    # An anonymous visitor's tabs are one client through the session; make sure the browser gets one.
    request.session.setdefault("chat", True)
    user = request.user
    config = {
        "socketPath": "/ws/chat/",
        "csrfToken": get_token(request),
        "user": {"name": user.get_username() if user.is_authenticated else "", "authenticated": user.is_authenticated},
        "models": list(available_models()),
        "defaultModel": available_models()[0],
        "demo": demo_enabled(),
        "protocol": protocol.PROTOCOL_VERSION,
        "conversationsUrl": reverse("conversation-list"),
        "logoutUrl": reverse("logout") if user.is_authenticated else None,
        # Where to log in when the login expires (the socket closes with 4401), or to log in at all.
        "loginUrl": login_url(next_url=request.path),
        "loginRequired": settings.STREAMING_REQUIRE_LOGIN,
    }
    return render(request, "streaming/chat.html", {"chat_config": config})


@require_GET
@login_required_unless_open
def conversation_list(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"conversations": selectors.conversation_list(client=request_client(request))})


@require_GET
@login_required_unless_open
def conversation_detail(request: HttpRequest, conversation_id: uuid.UUID) -> JsonResponse:
    try:
        detail = selectors.conversation_detail(client=request_client(request), conversation_id=conversation_id)
    except NotFound as exc:
        return JsonResponse({"error": exc.message}, status=404)
    return JsonResponse(detail)


def health(request: HttpRequest) -> HttpResponse:
    """For load balancers and container health checks: 503 once the worker drains, so traffic moves elsewhere."""
    if worker.draining:
        return HttpResponse("draining", content_type="text/plain", status=503)
    return HttpResponse("ok", content_type="text/plain")
