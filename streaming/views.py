"""The chat page and the JSON API it uses (list, read, rename, delete, search conversations, change their settings;
feedback on an answer); the stream itself is the WebSocket."""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
    HttpResponseNotFound,
    JsonResponse,
    QueryDict,
)
from django.middleware.csrf import get_token
from django.shortcuts import render, resolve_url
from django.urls import NoReverseMatch, reverse
from django.views import csrf
from django.views.decorators.http import require_GET, require_http_methods
from prometheus_client import CONTENT_TYPE_LATEST

from streaming import instructions, protocol, selectors, services, streams
from streaming.clients import client_for
from streaming.conf import app_settings
from streaming.deployment.metrics import exposition
from streaming.deployment.worker import worker
from streaming.errors import (
    BadRequest,
    CsrfFailed,
    LoginRequired,
    NotAllowed,
    NotFound,
    StillStreaming,
    StreamingError,
)
from streaming.provider.upstream import available_models, demo_enabled


def for_clients(*, api: bool) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Only for whom the host's rule (`STREAMING_CLIENT`) says may chat; the view finds that client as
    `request.chat_client`. Anyone else is sent to log in (the page) or answered 401 (the JSON API) while not logged
    in, and refused with 403 once logged in."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            client = client_for(user=request.user, session=request.session)
            if client is None:
                return _refused(request, api=api)
            request.chat_client = client  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        guarded.answers_json = api  # type: ignore[attr-defined]  # what `csrf_failure` answers it with
        return guarded

    return decorate


def _refused(request: HttpRequest, *, api: bool) -> HttpResponse:
    if request.user.is_authenticated:
        refusal = NotAllowed("You may not chat here.")
        return error_response(refusal) if api else HttpResponseForbidden(refusal.message)
    if api:
        return error_response(LoginRequired("Log in to see your conversations."))
    return redirect_to_login(request.get_full_path())


def login_url(*, next_url: str) -> str:
    """`settings.LOGIN_URL` with `?next=` the page to come back to, as `redirect_to_login` builds it."""
    login, _, query = resolve_url(settings.LOGIN_URL).partition("?")
    params = QueryDict(query, mutable=True)
    params["next"] = next_url
    return f"{login}?{params.urlencode(safe='/')}"


def logout_url() -> str | None:
    """The host's `logout` URL, if it names one (a stock project names only the admin's)."""
    try:
        return reverse("logout")
    except NoReverseMatch:
        return None


@require_GET
@for_clients(api=False)
def chat(request: HttpRequest) -> HttpResponse:
    # An anonymous visitor's tabs are one client through the session; make sure the browser gets one.
    request.session.setdefault("chat", True)
    user = request.user
    config = {
        "socketPath": app_settings.SOCKET_PATH,
        "csrfToken": get_token(request),
        "user": {"name": user.get_username() if user.is_authenticated else "", "authenticated": user.is_authenticated},
        "models": list(available_models()),
        "defaultModel": available_models()[0],
        "demo": demo_enabled(),
        "protocol": protocol.PROTOCOL_VERSION,
        "conversationsUrl": reverse("streaming:conversation-list"),
        "conversationSearchUrl": reverse("streaming:conversation-search"),
        "feedbackUrl": feedback_url_template(),
        "logoutUrl": logout_url() if user.is_authenticated else None,
        # Where to log in when the login expires (the socket closes with 4401), or to log in at all.
        "loginUrl": login_url(next_url=request.path),
        "loginRequired": app_settings.REQUIRE_LOGIN,
        # So that the settings panel hides the system instruction from the start, not once `ready` says so.
        "systemPinned": instructions.pinned(),
    }
    return render(request, "streaming/chat.html", {"chat_config": config})


@require_GET
@for_clients(api=True)
def conversation_list(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"conversations": selectors.conversation_list(client=request.chat_client)})


@require_http_methods(["GET", "PATCH", "DELETE"])
@for_clients(api=True)
def conversation_detail(request: HttpRequest, conversation_id: uuid.UUID) -> JsonResponse:
    """GET reads a conversation, PATCH renames it (`{"title": …}`) or changes its settings (`{"settings": {…}}`),
    DELETE hides it from its client.

    PATCH and DELETE are CSRF-protected like any unsafe method: the page sends the token from its config in the
    `X-CSRFToken` header.
    """
    client = request.chat_client
    try:
        if request.method == "PATCH":
            changes, limits = json_body(request), streams.current_limits()
            conversation = services.conversation_change(
                client=client, conversation_id=conversation_id, changes=changes, limits=limits
            )
            return JsonResponse(
                {
                    "id": str(conversation.id),
                    "title": conversation.title,
                    "updated": conversation.updated.isoformat(),
                    "settings": conversation.settings,
                }
            )
        if request.method == "DELETE":
            # Marked deleted first, so that no prompt starts another stream in it; then what still runs is stopped,
            # on this worker's loop or through the channel layer on another's, before the answer.
            running_streams = services.conversation_delete(client=client, conversation_id=conversation_id)
            if running_streams:
                async_to_sync(streams.streams_cancel)(client=client, streams=running_streams, layer=get_channel_layer())
            return JsonResponse({"id": str(conversation_id), "deleted": True})
        return JsonResponse(selectors.conversation_detail(client=client, conversation_id=conversation_id))
    except StreamingError as exc:
        return error_response(exc)


@require_GET
@for_clients(api=True)
def conversation_search(request: HttpRequest) -> JsonResponse:
    """`?q=…&page=N`: a page of the client's conversations whose title or content matches (see the selector)."""
    query = request.GET.get("q", "").strip()
    page = request.GET.get("page", "1")
    if not query:
        return error_response(BadRequest("Say what to search for in 'q'."))
    if len(query) > SEARCH_QUERY_CHARS:
        return error_response(BadRequest(f"'q' may be at most {SEARCH_QUERY_CHARS} characters long."))
    if not page.isdecimal() or not 1 <= int(page) <= SEARCH_PAGES:
        return error_response(BadRequest(f"'page' must be a whole number from 1 to {SEARCH_PAGES}."))
    return JsonResponse(selectors.conversation_search(client=request.chat_client, query=query, page=int(page)))


SEARCH_QUERY_CHARS = 500
SEARCH_PAGES = 50  # of `selectors.SEARCH_PAGE` conversations: a search reads at most this far
# The first kind an error is wins: StillStreaming is a NotAllowed with a status of its own.
ERROR_STATUS = {
    BadRequest: 400,
    LoginRequired: 401,
    NotFound: 404,
    StillStreaming: 409,
    NotAllowed: 403,
    CsrfFailed: 403,
}


def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body must be JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def error_response(exc: StreamingError) -> JsonResponse:
    """A `StreamingError` as the API answers it: `{"error": message, "code": code}` with its HTTP status."""
    status = next((code for kind, code in ERROR_STATUS.items() if isinstance(exc, kind)), 500)
    return JsonResponse({"error": exc.message, "code": exc.code}, status=status)


@require_http_methods(["PUT"])
@for_clients(api=True)
def exchange_feedback(request: HttpRequest, exchange_id: uuid.UUID) -> JsonResponse:
    """PUT `{"rating": "up" | "down" | null, "comment": "…"}`: the client's feedback on one of its ended answers
    (null takes it back). CSRF-protected like any unsafe method (the page sends its token as `X-CSRFToken`)."""
    try:
        body = json_body(request)
        if "rating" not in body:
            raise BadRequest('Send {"rating": "up", "down" or null, "comment": "…"}.')
        exchange = services.exchange_rate(
            client=request.chat_client, exchange_id=exchange_id, rating=body["rating"], comment=body.get("comment")
        )
    except StreamingError as exc:
        return error_response(exc)
    return JsonResponse({"stream": str(exchange.id), "feedback": selectors.exchange_feedback(exchange)})


ANY_EXCHANGE = uuid.UUID(int=0)


def feedback_url_template() -> str:
    """The feedback endpoint's URL with `{stream}` where the exchange's id goes, for the page to fill in."""
    return reverse("streaming:exchange-feedback", args=[ANY_EXCHANGE]).replace(str(ANY_EXCHANGE), "{stream}")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """`CSRF_FAILURE_VIEW`: the JSON API answers a failed CSRF check as it answers every refusal, with `{"error",
    "code": "csrf_failed"}` (403), so that the page can say what to do instead of reading Django's HTML page as a
    failure of its own; the other pages (the login form, the admin) keep Django's."""
    match = getattr(request, "resolver_match", None)
    if match is not None and getattr(match.func, "answers_json", False):
        return error_response(CsrfFailed())
    return csrf.csrf_failure(request, reason=reason)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape (see `deployment.metrics`): not found unless `STREAMING_METRICS_TOKEN` is set, and then
    only for a request that bears it."""
    token = app_settings.METRICS_TOKEN
    if not token:
        return HttpResponseNotFound()
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        refused = HttpResponse("unauthorized", content_type="text/plain", status=401)
        refused["WWW-Authenticate"] = "Bearer"
        return refused
    if request.method not in {"GET", "HEAD"}:
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def health(request: HttpRequest) -> HttpResponse:
    """For load balancers and container health checks: 503 once the worker drains, so traffic moves elsewhere."""
    if worker.draining:
        return HttpResponse("draining", content_type="text/plain", status=503)
    return HttpResponse("ok", content_type="text/plain")
