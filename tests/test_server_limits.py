"""Oversized frames against a real daphne started the way production starts it, `python -m chatproject.server`.

Two limits apply to what a client sends: the protocol's `limits.max_frame_bytes` (256 KiB), answered with
`bad_request` on an open socket, and daphne's WebSocket message limit (1 MiB), enforced by autobahn before the
message reaches the app. Past the second one the client must get a close frame with code 1009, not a TCP connection
that silently drops (autobahn's `failByDrop`, which daphne leaves on).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import websockets

from tests.conftest import prompt, texts
from tests.live import Daphne, production_env
from tests.test_workers import browser_session, connect

KIB = 1024
MESSAGE_TOO_BIG = 1009


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daphne]:
    """One production-mode daphne on a SQLite file, no Redis, answering with the demo model."""
    workdir = tmp_path_factory.mktemp("limits")
    env = production_env(workdir, f"sqlite:///{workdir / 'limits.sqlite3'}", DEMO_TOKENS_PER_SECOND="2000")
    daphne = Daphne("daphne-limits", env, workdir)
    yield daphne
    daphne.stop()


def prompt_of_size(size: int) -> str:
    """A well-formed `prompt` frame of `size` bytes or a little more, so only its size can be wrong with it."""
    return json.dumps(prompt(content="x" * size, request="big"))


async def test_a_frame_over_max_frame_bytes_gets_bad_request_and_the_socket_goes_on(server):
    socket = await connect(server, browser_session(server), max_size=None)

    await socket.connection.send(prompt_of_size(300 * KIB))

    error = await socket.receive()
    assert (error["type"], error["code"], error["request"]) == ("error", "bad_request", "big"), error
    await socket.send(prompt(max_tokens=3))
    frames = await socket.stream_to_end()
    assert frames[0]["type"] == "start" and frames[-1]["type"] == "done", frames
    assert texts(frames)
    await socket.close()


async def test_a_message_over_the_servers_limit_is_closed_with_1009_not_dropped(server):
    socket = await connect(server, browser_session(server), max_size=None)

    with pytest.raises(websockets.ConnectionClosed) as closed:
        await socket.connection.send(prompt_of_size(2 * KIB * KIB))
        await socket.receive()

    # `rcvd` is the close frame the server sent; None means the TCP connection ended without one.
    assert closed.value.rcvd is not None, f"the connection was dropped without a close frame: {closed.value!r}"
    assert closed.value.rcvd.code == MESSAGE_TOO_BIG, closed.value.rcvd
