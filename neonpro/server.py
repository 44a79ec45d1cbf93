"""The web process: daphne, with bounded request bodies and the app's JSON logging.

Run it as daphne is run (same options)::

    python -m neonpro.server -b 0.0.0.0 -p 8000 neonpro.asgi:application

What it changes, and why:

- **Request bodies are bounded before they are read.** Twisted reads a whole
  request body (to a temporary file above 100 kB) before daphne sees the
  request, and daphne then puts all of it on the application's queue at once:
  a 600 MB POST cost the process 500 MB that it kept. An ASGI middleware comes
  too late for that, so the limit (DATA_UPLOAD_MAX_MEMORY_SIZE, Django's own
  limit for a body) is applied in the request object Twisted fills:
  a `Content-Length` above it is refused as soon as the headers are in, before
  a byte of the body is read, and a chunked body is counted as it arrives and
  refused the moment it passes the limit. Either way the answer is 413 with
  the API's JSON error, the rest of what the client sends is discarded, and
  the connection is closed.
- **A small chunked body reaches the app.** Django and DRF read a body by its
  `Content-Length`; a chunked request has none, so its body was read as empty.
  Once the whole (bounded) body is in, the request gets the `Content-Length`
  of what arrived instead of `Transfer-Encoding: chunked`.
- **Every line is JSON.** Django's logging (JSON, PII redaction) is set up
  before daphne's, so daphne's own log lines go through it; daphne's
  plain-text access log is off, replaced by the app's request log
  (monitoring.access_log), which sees the client's address as
  neonpro.client_address settles it and redacts query strings.
- **WebSocket frames are written at once, without a debug log line.** autobahn
  builds one for every frame, debug logging on or off, and Twisted queues every
  write for the event loop's next turn (see `WebSocketProtocol`).
- **No `--proxy-headers`.** daphne's option believes the left-most
  `X-Forwarded-For` address, which the client writes itself; the client's
  address comes from TRUSTED_PROXIES instead, so the option is refused.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson
from daphne.cli import CommandLineInterface as DaphneCommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server as DaphneServer
from daphne.ws_protocol import WebSocketFactory
from daphne.ws_protocol import WebSocketProtocol as DaphneWebSocketProtocol

logger = logging.getLogger("neonpro.server")

# After a refusal the rest of the body is read and thrown away (nginx's "lingering
# close"), so the client can finish sending and read the 413 instead of meeting a
# reset: for at most LINGER_SECONDS in all, and while data keeps coming at least
# every LINGER_IDLE_SECONDS. It costs a socket for that long, never memory.
LINGER_SECONDS = 30.0
LINGER_IDLE_SECONDS = 5.0


def body_limit() -> int:
    """The largest request body accepted, in bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    from django.conf import settings

    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def too_large_response(limit: int) -> bytes:
    """The raw 413 answer: the API's JSON error, and the connection closes."""
    body = orjson.dumps({"code": "message_too_long",
                         "detail": f"Request bodies are limited to {limit} bytes."})
    head = (b"HTTP/1.1 413 Request Entity Too Large\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n")
    return head + body


class BoundedWebRequest(WebRequest):
    """daphne's request, refusing a body over the limit before or while it arrives."""

    _refused = False
    _chunked = False
    _received = 0
    _limit = 0

    def gotLength(self, length: int | None) -> None:
        self._limit = body_limit()
        self._chunked = length is None
        if length is not None and length > self._limit:
            # Nothing of the body is read: no "100 Continue", the answer now.
            self.requestHeaders.removeHeader(b"Expect")
            self._refuse(declared=length)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse(declared=None)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return  # answered already; the app never sees this request
        if self._chunked:
            # The whole body is in and within the limit: give it a length, since
            # Django and DRF read a body by its Content-Length.
            self.requestHeaders.removeHeader(b"Transfer-Encoding")
            self.requestHeaders.setRawHeaders(b"Content-Length", [str(self._received).encode()])
        super().requestReceived(command, path, version)

    def _refuse(self, *, declared: int | None) -> None:
        self._refused = True
        channel = self.channel
        transport = channel.transport
        transport.write(too_large_response(self._limit))
        channel.setTimeout(None)
        _log_refusal(self, declared=declared)
        if hasattr(transport, "loseWriteConnection"):
            # Half-close: the client sees the 413 and the end of the answer while it
            # may still be sending; what it sends is discarded (see LINGER_SECONDS).
            channel.dataReceived = _Discarder(transport)
            transport.loseWriteConnection()
        else:
            channel.dataReceived = _discard
            transport.loseConnection()


def _discard(data: bytes) -> None:
    return None


class _Discarder:
    """Drops what a refused client still sends; cuts the connection when it lingers."""

    def __init__(self, transport: Any) -> None:
        from twisted.internet import reactor

        self.transport = transport
        self.deadline = time.monotonic() + LINGER_SECONDS
        self.idle = reactor.callLater(LINGER_IDLE_SECONDS, self.abort)

    def __call__(self, data: bytes) -> None:
        if time.monotonic() > self.deadline:
            self.abort()
        elif self.idle.active():
            self.idle.reset(LINGER_IDLE_SECONDS)

    def abort(self) -> None:
        if self.idle.active():
            self.idle.cancel()
        if getattr(self.transport, "connected", False):
            self.transport.abortConnection()


def _log_refusal(request: BoundedWebRequest, *, declared: int | None) -> None:
    # Imported on first use: this module starts before Django is set up (it parses
    # daphne's options and configures logging first), and these read the settings.
    from monitoring.access_log import log_http_request
    from neonpro.client_address import client_address

    peer = getattr(request.client, "host", None)
    headers = [(name.lower(), value) for name, values in
               request.requestHeaders.getAllRawHeaders() for value in values]
    # The request line is still the channel's: Twisted hands it over once the body is in.
    method = getattr(request.channel, "_command", b"-").decode("ascii", "replace")
    uri = getattr(request.channel, "_path", b"").decode("latin-1")
    path, _, query = uri.partition("?")
    log_http_request(
        method=method, path=path, query=query, status=413, size=0, duration_ms=0.0,
        client_ip=client_address(peer=peer, headers=headers).ip, trace_id=None,
        extra={"reason": "body_too_large", "declaredBytes": declared,
               "limitBytes": request._limit},
    )


class BoundedHTTPFactory(HTTPFactory):
    """daphne's HTTP factory with BoundedWebRequest as the request class."""

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedWebRequest
        return protocol


class WebSocketProtocol(DaphneWebSocketProtocol):
    """daphne's WebSocket protocol, framing and writing a message at once, without a
    debug log line.

    autobahn's `sendMessage` is general (fragmentation, compression, masking, size
    limits, timing hooks, argument checks): the messages the chat sends use none of
    it, so those are framed here, byte for byte as autobahn frames them; any other
    message goes through autobahn. autobahn's `sendData` builds the arguments of a
    debug log line for every frame it writes (a highlighted type name through click,
    the peer), whether debug logging is on or not: about a tenth of the cost of
    sending a chat frame. The common case (socket open, nothing queued, no chopping,
    no octet logging) is written here as autobahn writes it, minus that line; every
    other case is autobahn's own.

    Twisted's `transport.write` never writes: it queues the bytes, asks the event
    loop to watch the socket for writability, and writes on the loop's next turn,
    then stops watching. Per frame of a streamed answer that was two registrations
    with the event loop and a turn of it, about a tenth of the event loop's work at
    light load (BENCHMARKS.md). When nothing is queued (almost always: a frame is
    small and the socket's buffer empty), the frame is sent on the socket here; what
    the socket does not take, and a socket Twisted already knows to be gone, goes
    through `transport.write` as before, so order and error handling stay Twisted's.
    """

    def sendMessage(self, payload: bytes, isBinary: bool = False,  # noqa: N803 (autobahn's)
                    fragmentSize: int | None = None, sync: bool = False,  # noqa: N803
                    doNotCompress: bool = False) -> None:  # noqa: N803
        """One unfragmented, uncompressed, unmasked message (every chat frame) framed
        here, byte for byte as autobahn frames it, without its general path's checks,
        per-message options and timing hooks; any other message is autobahn's."""
        length = len(payload)
        if (fragmentSize is not None or sync or self._perMessageCompress is not None
                or self.autoFragmentSize or self.trackedTimings or self.logFrames
                or self.maskServerFrames or not self.factory.isServer
                or self.state != self.STATE_OPEN or type(payload) is not bytes
                or 0 < self.maxMessagePayloadSize < length):
            super().sendMessage(payload, isBinary, fragmentSize, sync, doNotCompress)
            return
        stats = self.trafficStats
        stats.outgoingWebSocketMessages += 1
        stats.outgoingOctetsAppLevel += length
        stats.outgoingOctetsWebSocketLevel += length
        stats.outgoingWebSocketFrames += 1
        first = 0x82 if isBinary else 0x81  # FIN and the opcode (binary or text)
        if length <= 125:
            header = bytes((first, length))
        elif length <= 0xFFFF:
            header = bytes((first, 126)) + length.to_bytes(2, "big")
        else:
            header = bytes((first, 127)) + length.to_bytes(8, "big")
        self.sendData(header + payload)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if (chopsize or sync or self.send_queue or self.logOctets
                or self.state != self.STATE_OPEN):
            super().sendData(data, sync=sync, chopsize=chopsize)
            return
        write_now(self.transport, data)
        self.trafficStats.outgoingOctetsWireLevel += len(data)


def write_now(transport: Any, data: bytes) -> None:
    """Write `data` on a Twisted TCP transport now if nothing is queued before it;
    queue the rest (or all of it) with `transport.write`."""
    if (getattr(transport, "TLS", True) or transport.dataBuffer or transport._tempDataBuffer
            or not transport.connected or transport.disconnecting
            or transport._writeDisconnected):
        transport.write(data)
        return
    # Twisted's own send: the bytes taken, 0 when the socket would block, or an
    # exception instance when the connection is lost (left to `write`'s doWrite).
    sent = transport.writeSomeData(data)
    if isinstance(sent, int) and sent >= len(data):
        return
    transport.write(data[sent:] if isinstance(sent, int) else data)


class Server(DaphneServer):
    """daphne's server with bounded request bodies and without its plain-text access log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The access log is the app's JSON request log (monitoring.access_log).
        kwargs["action_logger"] = None
        super().__init__(*args, **kwargs)

    # daphne's run() builds its HTTP factory itself; this swaps in ours as it is set,
    # rather than copying run().
    @property
    def http_factory(self) -> HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        self._http_factory = (factory if isinstance(factory, BoundedHTTPFactory)
                              else BoundedHTTPFactory(self))

    # Likewise for the WebSocket factory: its connections use our protocol class.
    @property
    def ws_factory(self) -> WebSocketFactory:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: WebSocketFactory) -> None:
        factory.protocol = WebSocketProtocol
        self._ws_factory = factory


class CommandLineInterface(DaphneCommandLineInterface):
    """daphne's command line, serving through `Server`, logging JSON from the first line."""

    description = "NeonPro web process (daphne with bounded bodies and JSON logs)"
    server_class = Server

    def run(self, args: list[str]) -> None:
        if any(arg.startswith("--proxy-headers") for arg in args):
            self.parser.error("--proxy-headers trusts the client's own X-Forwarded-For; "
                              "name the reverse proxies in TRUSTED_PROXIES instead")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neonpro.settings")
        import django

        # Django's LOGGING (JSON lines, PII redaction) on the root logger first, so
        # daphne's logging.basicConfig() finds it configured and adds no plain handler.
        django.setup()
        # Python's warnings too, rather than as plain text on stderr.
        logging.captureWarnings(True)
        super().run(args)


def main(argv: list[str] | None = None) -> None:
    CommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
