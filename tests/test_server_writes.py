"""The web process writes a WebSocket frame on the socket at once, and otherwise exactly as
Twisted would: what the socket does not take is queued, in order, behind nothing else."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import main, tcp
from twisted.internet.protocol import Protocol
from twisted.internet.selectreactor import SelectReactor

from neonpro.server import write_now


@pytest.fixture
def connection():
    """A real Twisted TCP connection over a socket pair, on a reactor that is not running
    (so nothing is written unless this test's code writes it)."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    reactor = SelectReactor()
    transport = tcp.Connection(ours, Protocol(), reactor)
    transport.connected = 1
    yield transport, theirs, reactor
    ours.close()
    theirs.close()


def _received(peer: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_it_puts_a_frame_on_the_wire_before_the_event_loop_turns(connection):
    transport, peer, reactor = connection
    write_now(transport, b"frame one")
    write_now(transport, b"frame two")
    assert _received(peer) == b"frame oneframe two"
    assert transport not in reactor.getWriters()  # nothing left for the loop to write


def test_what_the_socket_does_not_take_is_queued_and_later_frames_wait_behind_it(connection):
    transport, peer, reactor = connection
    big = bytes(range(256)) * 40_000  # far more than a socket pair buffers
    write_now(transport, big)
    assert transport in reactor.getWriters()  # the rest waits for writability
    write_now(transport, b"after")  # must not overtake what is queued
    received = b""
    while transport in reactor.getWriters():
        received += _received(peer)
        assert transport.doWrite() is None
    received += _received(peer)
    assert received == big + b"after"


def test_a_lost_connection_is_left_to_twisted_to_report(connection):
    transport, peer, reactor = connection
    peer.close()
    write_now(transport, b"x" * 100_000)  # EPIPE on a direct send: queued for doWrite
    why = None
    for _ in range(10):
        why = transport.doWrite()
        if why is not None:
            break
    assert why is main.CONNECTION_LOST


def _open_protocol(protocol_class):
    """A WebSocket server protocol as daphne's factory leaves it once the handshake is
    done, writing to Twisted's in-memory transport."""
    from autobahn.twisted.websocket import WebSocketServerFactory
    from twisted.internet.testing import StringTransport

    protocol = protocol_class()
    protocol.factory = WebSocketServerFactory()
    protocol.transport = StringTransport()
    protocol._connectionMade()
    protocol.state = protocol.STATE_OPEN
    return protocol


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65_535, 65_536, 200_000])
@pytest.mark.parametrize("binary", [False, True])
def test_a_message_goes_out_framed_byte_for_byte_as_autobahn_frames_it(length, binary):
    from autobahn.twisted.websocket import WebSocketServerProtocol

    from neonpro.server import WebSocketProtocol

    payload = bytes(i % 251 for i in range(length))
    ours = _open_protocol(WebSocketProtocol)
    theirs = _open_protocol(WebSocketProtocol)
    ours.sendMessage(payload, binary)
    WebSocketServerProtocol.sendMessage(theirs, payload, binary)
    assert ours.transport.value() == theirs.transport.value()
    assert vars(ours.trafficStats) == vars(theirs.trafficStats)


def test_a_message_on_a_closed_socket_is_refused_as_autobahn_refuses_it():
    from autobahn.exception import Disconnected

    from neonpro.server import WebSocketProtocol

    protocol = _open_protocol(WebSocketProtocol)
    protocol.state = protocol.STATE_CLOSED
    with pytest.raises(Disconnected):
        protocol.sendMessage(b"late")
    assert protocol.transport.value() == b""
