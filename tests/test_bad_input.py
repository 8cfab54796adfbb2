"""Bad input over the socket: each case gets one `error` frame and changes nothing else."""

from __future__ import annotations

import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from chatproject.asgi import application
from streaming.models import Exchange
from tests.conftest import open_socket, prompt, texts
from tests.fake_openai import Script

pytestmark = pytest.mark.django_db(transaction=True)

BAD_FRAMES = [
    ("not json", "bad_request"),
    ("[1, 2]", "bad_request"),
    (json.dumps({"type": "shout"}), "bad_request"),
    (json.dumps({"content": "no type"}), "bad_request"),
    (json.dumps(prompt(request="")), "bad_request"),
    (json.dumps(prompt(request="x" * 65)), "bad_request"),
    (json.dumps({"type": "prompt", "request": "r1"}), "bad_request"),
    (json.dumps(prompt(content=42)), "bad_request"),
    (json.dumps(prompt(content="   ")), "bad_request"),
    (json.dumps(prompt(content="x" * 201)), "bad_request"),
    (json.dumps(prompt(conversation="not-a-uuid")), "bad_request"),
    (json.dumps(prompt(conversation=str(uuid.uuid4()))), "not_found"),
    (json.dumps(prompt(model="gpt-5-secret")), "not_allowed"),
    (json.dumps(prompt(temperature="hot")), "bad_request"),
    (json.dumps(prompt(temperature=True)), "bad_request"),
    (json.dumps(prompt(temperature=2.5)), "bad_request"),
    (json.dumps(prompt(max_tokens=0)), "bad_request"),
    (json.dumps(prompt(max_tokens=1.5)), "bad_request"),
    (json.dumps(prompt(max_tokens=10_000)), "bad_request"),
    (json.dumps(prompt(system=["list"])), "bad_request"),
    (json.dumps({"type": "cancel"}), "bad_request"),
    (json.dumps({"type": "cancel", "stream": str(uuid.uuid4())}), "not_found"),
    (json.dumps({"type": "prompt", "request": "big", "content": "x" * 3000}), "bad_request"),
]


@pytest.mark.parametrize(("text", "code"), BAD_FRAMES)
async def test_a_bad_frame_gets_an_error_and_the_socket_carries_on(upstream, settings, text, code):
    settings.STREAMING_MAX_PROMPT_CHARS = 200
    settings.STREAMING_MAX_FRAME_BYTES = 2048
    socket = await open_socket()

    await socket.communicator.send_to(text_data=text)
    error = await socket.receive()

    assert error["type"] == "error" and error["code"] == code and error["retryable"] is False
    assert error["message"] and "Traceback" not in error["message"]
    assert "stream" not in error
    assert await socket.nothing_received()
    assert await Exchange.objects.acount() == 0 and upstream.requests == []
    await socket.send(prompt("Still there?"))  # the same socket still works
    assert texts(await socket.stream_to_end()) == "Hello, world!"
    await socket.close()


async def test_an_error_names_the_request_it_answers(upstream):
    socket = await open_socket()
    await socket.send(prompt(request="mine", temperature=-1))
    assert (await socket.receive())["request"] == "mine"
    await socket.close()


async def test_binary_frames_are_refused(upstream):
    socket = await open_socket()
    await socket.communicator.send_to(bytes_data=b"\x00\x01")
    assert (await socket.receive())["code"] == "bad_request"
    await socket.close()


async def test_another_clients_stream_cannot_be_cancelled(upstream):
    upstream.then(Script(tokens=["a", "b"], hang_after=1))
    owner, intruder = await open_socket(), await open_socket()
    await owner.send(prompt())
    start = await owner.receive()
    await owner.receive()

    await intruder.send({"type": "cancel", "stream": start["stream"]})

    assert (await intruder.receive())["code"] == "not_found"
    assert not upstream.requests[0].closed.is_set()
    await owner.send({"type": "cancel", "stream": start["stream"]})
    assert (await owner.receive())["finish_reason"] == "cancelled"
    await owner.close()
    await intruder.close()


async def test_another_clients_conversation_cannot_be_continued(upstream):
    owner, intruder = await open_socket(), await open_socket()
    await owner.send(prompt())
    conversation = (await owner.stream_to_end())[0]["conversation"]

    await intruder.send(prompt(conversation=conversation))

    assert (await intruder.receive())["code"] == "not_found"
    assert len(upstream.requests) == 1
    await owner.close()
    await intruder.close()


async def test_a_disallowed_origin_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


async def test_login_is_required_when_configured(settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"http://localhost")])
    await communicator.connect()
    error = await communicator.receive_json_from()
    assert error["type"] == "error" and error["code"] == "not_allowed"
    assert (await communicator.receive_output())["code"] == 4401
    await communicator.send_json_to(prompt())
    assert await communicator.receive_nothing()
    assert await Exchange.objects.acount() == 0


async def test_a_logged_in_user_is_one_client_across_sockets(upstream, settings):
    settings.STREAMING_REQUIRE_LOGIN = True
    user = await User.objects.acreate(username="ada")
    sockets = []
    for _ in range(2):
        communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"http://localhost")])
        communicator.scope["user"] = user
        await communicator.connect()
        assert (await communicator.receive_json_from())["type"] == "ready"
        sockets.append(communicator)

    await sockets[0].send_json_to(prompt())
    for communicator in sockets:
        frames = [await communicator.receive_json_from() for _ in range(2)]
        assert frames[0]["type"] == "start"
    row = await Exchange.objects.aget()
    assert row.user_id == user.pk and row.client == f"user:{user.pk}"
    for communicator in sockets:
        await communicator.disconnect()
