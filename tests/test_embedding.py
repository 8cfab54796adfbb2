"""What a host project gets when it embeds the app: settings with defaults inside the app, its hooks (who may chat,
which tools a client is offered, signals when an exchange starts and ends), the worker's duties starting by
themselves, and the system checks that catch a configuration that would fail silently."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.dispatch import receiver
from django.test import Client as HttpClient
from django.urls import path, reverse

from chatproject.asgi import application
from streaming import checks, signals
from streaming.clients import Client, default_client
from streaming.conf import DEFAULTS, app_settings
from streaming.consumers import ChatConsumer
from streaming.deployment import running
from streaming.deployment.shared import state_url
from streaming.deployment.worker import worker
from streaming.models import Exchange
from tests.conftest import ORIGIN, open_socket, prompt

REDIS_LAYER = "streaming.deployment.redis_layer.RedisLayer"


# ---- settings ----------------------------------------------------------------------------------------------------


def test_a_setting_the_host_leaves_out_has_the_apps_default(settings):
    del settings.STREAMING_MAX_STREAMS
    assert app_settings.MAX_STREAMS == DEFAULTS["MAX_STREAMS"] == 3
    settings.STREAMING_MAX_STREAMS = 7
    assert app_settings.MAX_STREAMS == 7  # read again once it changed


def test_login_is_required_unless_debug_when_the_host_says_nothing(settings):
    del settings.STREAMING_REQUIRE_LOGIN
    settings.DEBUG = False
    assert app_settings.REQUIRE_LOGIN is True
    settings.DEBUG = True
    assert app_settings.REQUIRE_LOGIN is False


def test_the_models_default_to_the_default_model(settings):
    del settings.STREAMING_MODELS
    settings.STREAMING_MODEL = "my-model"
    assert app_settings.MODELS == ["my-model"]


def test_an_unknown_setting_is_an_attribute_error():
    with pytest.raises(AttributeError, match="STREAMING_NO_SUCH"):
        _ = app_settings.NO_SUCH


def test_the_shared_state_follows_the_channel_layers_one_redis_server(settings):
    settings.STREAMING_REDIS_URL = None
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": REDIS_LAYER, "CONFIG": {"hosts": ["redis://cache:6379/2"]}}}
    assert state_url() == "redis://cache:6379/2"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert state_url() is None
    settings.STREAMING_REDIS_URL = "redis://state:6379/0"
    assert state_url() == "redis://state:6379/0"


# ---- who may chat ------------------------------------------------------------------------------------------------


def only_staff(*, user, session) -> Client | None:
    """A host's rule: staff only."""
    return default_client(user=user, session=session) if user.is_authenticated and user.is_staff else None


@pytest.fixture
def staff_only(settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    settings.STREAMING_CLIENT = "tests.test_embedding.only_staff"


@pytest.mark.django_db
def test_a_logged_in_user_the_hosts_rule_refuses_gets_403_on_the_page_and_the_api(staff_only):
    browser = HttpClient()
    browser.force_login(User.objects.create_user("bob", password="a-long-password-1"))
    assert browser.get(reverse("streaming:chat")).status_code == 403
    refused = browser.get(reverse("streaming:conversation-list"))
    assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
    anonymous = HttpClient().get(reverse("streaming:conversation-list"))
    assert anonymous.status_code == 401
    staff = HttpClient()
    staff.force_login(User.objects.create_user("ada", password="a-long-password-1", is_staff=True))
    assert staff.get(reverse("streaming:chat")).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_a_logged_in_user_the_hosts_rule_refuses_is_told_and_the_socket_closes_4403(staff_only):
    user = await database_sync_to_async(User.objects.create_user)("bob", password="a-long-password-1")
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[ORIGIN])
    communicator.scope["user"] = user  # as AuthMiddleware would give it
    await communicator.connect()

    error = await communicator.receive_json_from()
    assert (error["type"], error["code"], error["message"]) == ("error", "not_allowed", "You may not chat here.")
    assert (await communicator.receive_output())["code"] == 4403


# ---- tools offered -----------------------------------------------------------------------------------------------


def only_the_clock(*, client, tools):
    """A host's rule: only `current_time`, and it tries to slip in one the client was not allowed."""
    return [tool for tool in tools if tool.name == "current_time"] + ["not a tool"]


async def offered_names() -> list[str]:
    socket = await open_socket(ready=False)
    ready = await socket.receive()
    await socket.close()
    return [tool["name"] for tool in ready["tools"]]


@pytest.mark.django_db(transaction=True)
async def test_the_host_decides_which_tools_a_client_is_offered(settings):
    settings.STREAMING_OPENAI_API_KEY = ""  # the demo model, which is offered tools
    assert await offered_names() == ["current_time", "search_history"]
    settings.STREAMING_OFFERED_TOOLS = "tests.test_embedding.only_the_clock"
    assert await offered_names() == ["current_time"]


def broken_rule(*, client, tools):
    """A host's rule with a bug, which the test arms once the socket is open (`ready` lists the tools too)."""
    if broken_rule.armed:
        raise LookupError("the plan table is gone")
    return tools


broken_rule.armed = False


@pytest.mark.django_db(transaction=True)
async def test_a_tools_hook_that_raises_refuses_its_prompt_before_anything_is_saved(upstream, settings):
    settings.STREAMING_TOOL_MODELS = ["fake-model"]
    settings.STREAMING_OFFERED_TOOLS = "tests.test_embedding.broken_rule"
    socket = await open_socket()
    broken_rule.armed = True
    try:
        await socket.send(prompt(request="r"))
        error = await socket.receive()
    finally:
        broken_rule.armed = False
    assert (error["type"], error["code"], error["request"]) == ("error", "internal_error", "r")
    assert not await database_sync_to_async(Exchange.objects.exists)()
    assert upstream.requests == []


# ---- signals -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_host_hears_when_an_exchange_starts_and_ends_with_its_row(upstream):
    heard = []

    @receiver(signals.exchange_started, weak=False)
    def started(sender, exchange, **kwargs):
        heard.append(("started", exchange.status, exchange.prompt))

    @receiver(signals.exchange_finished, weak=False)
    def finished(sender, exchange, **kwargs):
        heard.append(("finished", exchange.status, exchange.answer))

    @receiver(signals.exchange_finished, weak=False)
    def broken(sender, exchange, **kwargs):
        raise RuntimeError("a host's receiver fails")

    try:
        socket = await open_socket()
        await socket.send(prompt("Say hello"))
        frames = await socket.stream_to_end()
        await socket.close()
        await running.streams_finished()
    finally:
        for signal, function in [
            (signals.exchange_started, started),
            (signals.exchange_finished, finished),
            (signals.exchange_finished, broken),
        ]:
            signal.disconnect(function)

    assert frames[-1]["type"] == "done"  # a failing receiver breaks nothing
    answer = "".join(frame["text"] for frame in frames if frame["type"] == "delta")
    assert heard == [("started", "streaming", "Say hello"), ("finished", "completed", answer)]
    assert await Exchange.objects.filter(status="completed").acount() == 1


# ---- the worker's duties -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_workers_duties_start_with_its_first_socket_without_a_wrapper():
    await worker.stop_duties()
    assert not worker.on_duty
    socket = await open_socket()
    assert worker.on_duty
    await socket.close()


# ---- system checks -----------------------------------------------------------------------------------------------


def ids(found) -> list[str]:
    return [message.id for message in found]


def test_the_reference_project_passes_every_check():
    found = checks.check_tools() + checks.check_hooks() + checks.check_shared_state() + checks.check_asgi()
    assert found == []


def test_a_hook_that_cannot_be_imported_is_an_error(settings):
    settings.STREAMING_SYSTEM_INSTRUCTION = "tests.test_embedding.no_such_function"
    settings.STREAMING_CLIENT = "streaming.clients.default_client"
    [error] = checks.check_hooks()
    assert error.id == "streaming.E002" and "STREAMING_SYSTEM_INSTRUCTION" in error.msg


def test_an_api_that_is_neither_chat_nor_responses_is_an_error(settings):
    assert checks.check_api() == []
    settings.STREAMING_OPENAI_API = "responses"
    assert checks.check_api() == []
    settings.STREAMING_OPENAI_API = "completions"
    [error] = checks.check_api()
    assert error.id == "streaming.E007" and "'completions'" in error.msg


def test_take_over_without_the_responses_api_or_without_redis_is_an_error(settings):
    settings.STREAMING_TAKEOVER = True
    settings.STREAMING_OPENAI_API = "chat"
    settings.STREAMING_REDIS_URL = "redis://127.0.0.1:6379/0"
    [error] = checks.check_takeover()
    assert error.id == "streaming.E008" and "'chat'" in error.msg
    settings.STREAMING_OPENAI_API = "responses"
    assert checks.check_takeover() == []
    settings.STREAMING_REDIS_URL = None  # and the in-memory layer of the tests: nothing another worker could read
    [error] = checks.check_takeover()
    assert error.id == "streaming.E008" and "Redis" in error.msg
    settings.STREAMING_TAKEOVER = False
    assert checks.check_takeover() == []


def test_a_redis_layer_on_several_servers_needs_the_shared_states_server(settings):
    hosts = ["redis://a:6379/0", "redis://b:6379/0"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": REDIS_LAYER, "CONFIG": {"hosts": hosts}}}
    settings.STREAMING_REDIS_URL = None
    assert ids(checks.check_shared_state()) == ["streaming.E003"]
    settings.STREAMING_REDIS_URL = "redis://a:6379/1"
    assert checks.check_shared_state() == []


def test_shared_state_in_redis_with_an_in_memory_layer_is_an_error(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.STREAMING_REDIS_URL = "redis://127.0.0.1:6379/0"
    assert ids(checks.check_shared_state()) == ["streaming.E004"]


def test_no_channel_layer_or_no_asgi_application_is_an_error(settings):
    settings.CHANNEL_LAYERS = {}
    assert ids(checks.check_shared_state()) == ["streaming.E005"]
    del settings.ASGI_APPLICATION
    assert ids(checks.check_asgi()) == ["streaming.E005"]


elsewhere = ProtocolTypeRouter({"websocket": URLRouter([path("socket/", ChatConsumer.as_asgi())])})
nested = ProtocolTypeRouter({"websocket": URLRouter([path("ws/", URLRouter([path("chat/", ChatConsumer.as_asgi())]))])})


def opaque(scope, receive, send):
    """An ASGI application the check cannot look into."""


def test_an_asgi_application_that_does_not_route_the_socket_path_is_an_error(settings):
    settings.ASGI_APPLICATION = "tests.test_embedding.elsewhere"
    assert ids(checks.check_asgi()) == ["streaming.E006"]
    settings.ASGI_APPLICATION = "tests.test_embedding.nested"
    assert checks.check_asgi() == []
    settings.ASGI_APPLICATION = "tests.test_embedding.opaque"
    assert checks.check_asgi() == []  # it cannot tell, so it says nothing
    assert checks.routes_to_chat(application, "/ws/chat/") is True
    assert checks.routes_to_chat(application, "/ws/other/") is False


def test_the_channel_layers_keep_the_dotted_paths_deployments_name():
    from django.utils.module_loading import import_string

    from streaming.deployment.layers import LocalChannelLayer
    from streaming.deployment.redis_layer import RedisLayer

    assert import_string("streaming.redis_layer.RedisLayer") is RedisLayer
    assert import_string("streaming.layers.LocalChannelLayer") is LocalChannelLayer
