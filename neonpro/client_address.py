"""The client's address and scheme behind trusted reverse proxies, for HTTP and WebSocket.

Every per-address limit (sign-in lock-out, token and WebSocket connection rate
limits), consent record and access log line keys on the client's address, so a
client that can choose its address can bypass them all. `X-Forwarded-For` is
written by whoever sends the request: a client can put any list of addresses in
it, and each proxy on the way appends the address it received the connection
from. Only the entries appended by our own proxies can be believed, and those
are at the right-hand end. So the client is the right-most address that is not
one of our proxies (`TRUSTED_PROXIES`), and when the TCP peer itself is not a
trusted proxy, the peer is the client and forwarded headers are ignored (the
default: `TRUSTED_PROXIES` empty). `X-Forwarded-Proto` is believed only from a
trusted peer too, and dropped otherwise, so that a client cannot make Django
think a plain-HTTP request was secure (SECURE_PROXY_SSL_HEADER).

`client_address()` is the one rule; `ClientAddressMiddleware` applies it to each
HTTP and WebSocket scope before anything else runs, so `scope["client"]` (and
Django's `REMOTE_ADDR`, which is read from it) is the client everywhere, and
`request_client_ip()` / `scope_client_ip()` are how code reads it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR = b"x-forwarded-for"
FORWARDED_PROTO = b"x-forwarded-proto"


@dataclass(frozen=True)
class ClientAddress:
    """Where a request came from: the client's address (or None) and the scheme it used."""

    ip: str | None
    scheme: str | None


def parse_trusted_proxies(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses and CIDR networks from TRUSTED_PROXIES; a bad entry is a clear error."""
    networks = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"TRUSTED_PROXIES: {text!r} is not an IP address or CIDR network") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted_networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_trusted_proxies(values)


def trusted_networks() -> tuple[IPNetwork, ...]:
    """The parsed TRUSTED_PROXIES setting (cached per distinct value)."""
    return _trusted_networks(tuple(settings.TRUSTED_PROXIES))


def _ip(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443", as some proxies write
        text = text[1:text.index("]")]
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network
               for network in networks)


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every comma-separated entry of every `name` header, in order of arrival."""
    entries: list[str] = []
    for key, value in headers:
        if key.lower() == name:
            entries.extend(value.decode("latin-1").split(","))
    return [entry.strip() for entry in entries if entry.strip()]


def client_address(*, peer: str | None, headers: Iterable[tuple[bytes, bytes]],
                   trusted: Sequence[IPNetwork] | None = None,
                   scheme: str | None = None) -> ClientAddress:
    """The client's address and scheme from the TCP peer and the request's headers.

    `peer` is the address the connection came from; `headers` the raw ASGI
    headers. With the peer outside `trusted` (TRUSTED_PROXIES by default), the
    peer is the client and forwarded headers count for nothing. Otherwise the
    right-most X-Forwarded-For entry that is not a trusted proxy is the client;
    if every entry is trusted (a request from a proxy itself), the left-most.
    """
    networks = trusted_networks() if trusted is None else trusted
    peer_ip = _ip(peer) if peer else None
    if peer_ip is None or not _is_trusted(peer_ip, networks):
        return ClientAddress(str(peer_ip) if peer_ip else peer or None, scheme)
    headers = list(headers)
    client = peer_ip
    for entry in reversed(_header_values(headers, FORWARDED_FOR)):
        hop = _ip(entry)
        if hop is None:
            break  # not written by one of our proxies: stop at the last hop we can believe
        client = hop
        if not _is_trusted(hop, networks):
            break
    protos = _header_values(headers, FORWARDED_PROTO)
    forwarded_scheme = protos[-1].lower() if protos else ""
    if forwarded_scheme in ("http", "https"):
        scheme = forwarded_scheme
    return ClientAddress(str(client), scheme)


def _ws_scheme(http_scheme: str, scope_type: str) -> str:
    if scope_type != "websocket":
        return http_scheme
    return {"https": "wss", "http": "ws"}.get(http_scheme, http_scheme)


class ClientAddressMiddleware:
    """ASGI middleware: `scope["client"]` and `scope["scheme"]` are the client's own.

    Outermost in `neonpro.asgi`, for HTTP and WebSocket alike. Forwarded headers
    from an untrusted peer are removed from the scope, so nothing further in can
    be misled by them.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope.get("type") not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        peer = (scope.get("client") or (None,))[0]
        headers = scope.get("headers") or []
        networks = trusted_networks()
        peer_ip = _ip(peer) if peer else None
        scope = dict(scope)
        if peer_ip is None or not _is_trusted(peer_ip, networks):
            scope["headers"] = [(key, value) for key, value in headers
                                if key.lower() not in (FORWARDED_FOR, FORWARDED_PROTO)]
            return await self.app(scope, receive, send)
        found = client_address(peer=peer, headers=headers, trusted=networks)
        scope["client"] = [found.ip, 0]
        if found.scheme:
            scope["scheme"] = _ws_scheme(found.scheme, scope["type"])
        return await self.app(scope, receive, send)


def request_client_ip(request: Any) -> str | None:
    """The client's address of a Django (or DRF) request, as the middleware resolved it."""
    http_request = getattr(request, "_request", request)
    meta = getattr(http_request, "META", None) or {}
    return meta.get("REMOTE_ADDR") or None


def scope_client_ip(scope: dict) -> str | None:
    """The client's address of an ASGI scope, as the middleware resolved it."""
    client = scope.get("client")
    if not client or not client[0]:
        return None  # in-process test communicators and unix sockets have no address
    return str(client[0])
