"""The reactor `chatproject.server` runs daphne on: a connection's writes go out at the loop's next turn without
watching its socket, and a socket whose peer does not read is watched until everything is sent.

Real TCP connections on the loopback, a Twisted server on `PromptWriteReactor` and a blocking client in a thread;
the loop counts how often it is asked to watch a socket for writability.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from twisted.internet.protocol import Factory, Protocol

from streaming.deployment.reactor import PromptWriteReactor

FRAMES = [b"first frame|", b"second frame|", b"third frame|"]


class CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts the sockets it is asked to watch for writability, and says when the first is."""

    def __init__(self) -> None:
        super().__init__()
        self.watched = 0
        self.first_watch = asyncio.Event()

    def add_writer(self, fd, callback, *args):
        self.watched += 1
        self.first_watch.set()
        return super().add_writer(fd, callback, *args)


class Sender(Protocol):
    """Writes the factory's payload, in the pieces given, within one turn, then closes (after sending it all)."""

    def connectionMade(self) -> None:
        for piece in self.factory.pieces:
            self.transport.write(piece)
        self.transport.loseConnection()


@pytest.fixture
def loop() -> Iterator[CountingLoop]:
    loop = CountingLoop()
    yield loop
    loop.close()


def serve(loop: CountingLoop, pieces: list[bytes]) -> tuple[PromptWriteReactor, int]:
    reactor = PromptWriteReactor(loop)
    factory = Factory.forProtocol(Sender)
    factory.pieces = pieces
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    return reactor, port.getHost().port


def read_all(port: int, *, ready: asyncio.Event | None = None, loop: asyncio.AbstractEventLoop | None = None) -> bytes:
    """Everything the server sends until it closes; with `ready`, reading starts only once it is set."""
    with socket.create_connection(("127.0.0.1", port)) as client:
        if ready is not None and loop is not None:
            asyncio.run_coroutine_threadsafe(ready.wait(), loop).result(timeout=30)
        received = bytearray()
        while chunk := client.recv(65536):
            received += chunk
        return bytes(received)


def test_frames_written_in_one_turn_are_sent_and_the_socket_is_never_watched(loop):
    reactor, port = serve(loop, FRAMES)

    received = loop.run_until_complete(asyncio.wait_for(asyncio.to_thread(read_all, port), 30))

    assert received == b"".join(FRAMES)  # in order, and the close waited for them
    assert loop.watched == 0
    assert reactor.getWriters() == []


def test_a_peer_that_does_not_read_gets_the_rest_once_it_does(loop):
    """More than one send carries (Twisted sends at most 128 KiB at a time), to a client that reads only once the
    socket is watched: the rest goes out as the client reads."""
    pieces = [bytes([n % 251]) * 65536 for n in range(128)]  # 8 MiB
    reactor, port = serve(loop, pieces)

    received = loop.run_until_complete(
        asyncio.wait_for(asyncio.to_thread(read_all, port, ready=loop.first_watch, loop=loop), 30)
    )

    assert received == b"".join(pieces)
    assert loop.watched >= 1
    assert reactor.getWriters() == []


def test_daphne_keeps_the_reactor_installed_before_it():
    """daphne installs its own reactor at import unless an asyncio one is installed already; `chatproject.server`
    relies on that."""
    code = (
        "import asyncio; from streaming.deployment import reactor; reactor.install(asyncio.new_event_loop()); "
        "import daphne.server; from twisted.internet import reactor as installed; "
        "print(type(installed).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "PromptWriteReactor"
