"""Run daphne on uvloop: `python -m chatproject.server [daphne's options] chatproject.asgi:application`.

Daphne builds its event loop when it is imported, from the loop policy in force, unless an asyncio reactor is installed
already. This one installs `streaming.deployment.reactor`'s on a uvloop loop: the relay spends much of its time in the
event loop itself (see docs/performance.md), which uvloop runs faster, and that reactor sends each socket's frames
without asking epoll whether it may. Every option is daphne's own.

Three things differ from plain `daphne`: a WebSocket that autobahn fails (a message over
`--websocket-max-message-size`, a protocol error) gets a close frame, 1009 for a message too big, instead of a TCP
connection dropped without one, which a client cannot tell from a network fault (docs/protocol.md); an open WebSocket
no longer keeps the HTTP request it was upgraded from (`forget_the_upgrade_request`); and the garbage collector runs
less often and skips what was loaded at start (`collect_less`).
"""

import asyncio
import gc
from typing import Any

import uvloop

from streaming.deployment import reactor


def main() -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    reactor.install(asyncio.new_event_loop())
    # Imported only now: daphne.server installs its own reactor at import unless an asyncio one is in place.
    from daphne.cli import CommandLineInterface
    from daphne.server import Server

    class ChatServer(Server):
        def __init__(self, **options: Any) -> None:
            # daphne builds its WebSocket factory in `run()` and calls `ready_callable` after configuring it, just
            # before the reactor starts: the one moment to add an option. `ws_factory` is daphne's attribute, not
            # its API; tests/test_server_limits.py fails (the server does not start) if that changes.
            super().__init__(**options, ready_callable=self.ready)

        def ready(self) -> None:
            close_instead_of_dropping(self.ws_factory)
            forget_the_upgrade_request(self.ws_factory)
            collect_less()

    class ChatCommandLineInterface(CommandLineInterface):
        server_class = ChatServer

    ChatCommandLineInterface.entrypoint()


# Allocations between two collections of the youngest generation (CPython's default is 700), and collections of each
# generation before the next older one is collected (default 10 and 10).
GC_THRESHOLDS = (7_000, 20, 20)


def collect_less() -> None:
    """Keep the collector's pauses out of the event loop's turns, once the application is loaded.

    Every stream allocates many short-lived objects per token, and every few seconds CPython's full collection
    walked every object the process holds, Django's and the app's modules included: in a burst of 400 prompts it
    stopped the loop for 80 to 150 ms at a time, 0.6 s of the worker's CPU in a run of 6 s. Frozen, what was loaded
    at start is never walked again; with the thresholds above, the same run collected for 0.1 s (docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def close_instead_of_dropping(ws_factory: Any) -> None:
    """Make autobahn fail a WebSocket with a close frame and a closing handshake rather than by dropping TCP.

    autobahn's default, `failByDrop=True`, which daphne keeps, aborts the TCP connection. With it off autobahn sends
    the close (1009 for a message too big, 1002 for a protocol error) and drops the connection only if the client
    does not answer within `closeHandshakeTimeout` (1 s), so a client that keeps sending cannot hold the socket.
    """
    ws_factory.setProtocolOptions(failByDrop=False)


def forget_the_upgrade_request(ws_factory: Any) -> None:
    """Let each WebSocket's transport drop the HTTP channel that upgraded it, and with it the request and its headers.

    Twisted's `HTTPChannel` registers itself as its transport's push producer when the connection opens, and daphne
    hands the transport on to the WebSocket protocol without unregistering it: the transport then keeps the channel, the
    channel its unfinished `GET` (daphne's `WebRequest`, its request and response headers, its addresses) for as long as
    the socket is open, about 3 KB per idle socket. That producer does nothing for a WebSocket: with its request never
    finished, the channel neither pauses nor resumes the transport. Nothing else registers a producer on a WebSocket's
    transport (daphne and autobahn do not), so the protocol unregisters it as its connection is made, before autobahn
    sees the handshake. `IConsumer.unregisterProducer` is Twisted's public API; tests/test_idle_sockets.py holds that
    the channel is registered, then gone.
    """

    class WebSocketProtocol(ws_factory.protocol):
        def connectionMade(self) -> None:
            self.transport.unregisterProducer()
            super().connectionMade()

    ws_factory.protocol = WebSocketProtocol


if __name__ == "__main__":
    main()
