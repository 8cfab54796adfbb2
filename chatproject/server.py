"""Run daphne on uvloop: `python -m chatproject.server [daphne's options] chatproject.asgi:application`.

Daphne builds its event loop when it is imported, from the loop policy in force; setting uvloop's policy first is all
it takes. The relay spends much of its time in the event loop itself (see docs/performance.md), which uvloop runs
faster. Every option is daphne's own.

One thing differs from plain `daphne`: a WebSocket that autobahn fails (a message over
`--websocket-max-message-size`, a protocol error) gets a close frame, 1009 for a message too big, instead of a TCP
connection dropped without one, which a client cannot tell from a network fault (docs/protocol.md).
"""

import asyncio
from typing import Any

import uvloop


def main() -> None:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # Imported only now: daphne.server creates its event loop at import.
    from daphne.cli import CommandLineInterface
    from daphne.server import Server

    class ChatServer(Server):
        def __init__(self, **options: Any) -> None:
            # daphne builds its WebSocket factory in `run()` and calls `ready_callable` after configuring it, just
            # before the reactor starts: the one moment to add an option. `ws_factory` is daphne's attribute, not
            # its API; tests/test_server_limits.py fails (the server does not start) if that changes.
            super().__init__(**options, ready_callable=lambda: close_instead_of_dropping(self.ws_factory))

    class ChatCommandLineInterface(CommandLineInterface):
        server_class = ChatServer

    ChatCommandLineInterface.entrypoint()


def close_instead_of_dropping(ws_factory: Any) -> None:
    """Make autobahn fail a WebSocket with a close frame and a closing handshake rather than by dropping TCP.

    autobahn's default, `failByDrop=True`, which daphne keeps, aborts the TCP connection. With it off autobahn sends
    the close (1009 for a message too big, 1002 for a protocol error) and drops the connection only if the client
    does not answer within `closeHandshakeTimeout` (1 s), so a client that keeps sending cannot hold the socket.
    """
    ws_factory.setProtocolOptions(failByDrop=False)


if __name__ == "__main__":
    main()
