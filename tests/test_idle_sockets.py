"""What an open, idle WebSocket keeps in a daphne worker (docs/performance.md, "Idle sockets")."""

from __future__ import annotations

import subprocess
import sys

# Run in a process of its own, on the reactor `chatproject.server` installs: autobahn's `connectionMade` imports
# Twisted's global reactor, which must not be installed in the test process.
UPGRADE = """
import asyncio
from streaming.deployment import reactor
reactor.install(asyncio.new_event_loop())
from daphne.ws_protocol import WebSocketFactory
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel
from chatproject.server import forget_the_upgrade_request

transport = StringTransport()
HTTPChannel().makeConnection(transport)  # the channel that reads the upgrade request
print(type(transport.producer).__name__)
factory = WebSocketFactory(None, server="test")
forget_the_upgrade_request(factory)
protocol = factory.buildProtocol(transport.getPeer())
transport.protocol = protocol  # as daphne hands the transport on when it upgrades
protocol.makeConnection(transport)
print(type(transport.producer).__name__)
"""


def test_a_websocket_does_not_keep_the_http_channel_it_was_upgraded_from():
    """Twisted's HTTP channel registers itself as its transport's producer, and daphne leaves it there when it hands
    the transport to the WebSocket: the transport would keep the channel and its request for the socket's life."""
    out = subprocess.run([sys.executable, "-c", UPGRADE], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["HTTPChannel", "NoneType"], out
