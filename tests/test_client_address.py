"""The client's address behind trusted proxies (neonpro.client_address): the rule itself,
the ASGI middleware that applies it, and the setting's validation."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from neonpro.client_address import (
    ClientAddressMiddleware,
    client_address,
    parse_trusted_proxies,
    scope_client_ip,
)

PROXY = parse_trusted_proxies(["10.0.0.0/8", "fd00::/8"])


def _xff(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", value.encode()) for value in values]


def test_it_ignores_forwarded_headers_when_no_proxy_is_trusted():
    found = client_address(peer="203.0.113.5", headers=_xff("198.51.100.1"), trusted=())
    assert found.ip == "203.0.113.5"


def test_it_ignores_forwarded_headers_from_an_untrusted_peer():
    found = client_address(peer="203.0.113.5", headers=_xff("198.51.100.1"), trusted=PROXY)
    assert found.ip == "203.0.113.5"


def test_it_takes_the_right_most_address_that_is_not_a_trusted_proxy():
    # The client forged the first two entries; our proxies appended the last two.
    headers = _xff("1.2.3.4, 5.6.7.8", "198.51.100.7, 10.1.1.1")
    found = client_address(peer="10.0.0.2", headers=headers, trusted=PROXY)
    assert found.ip == "198.51.100.7"


def test_it_takes_the_left_most_address_when_every_hop_is_trusted():
    found = client_address(peer="10.0.0.2", headers=_xff("10.9.9.9, 10.1.1.1"), trusted=PROXY)
    assert found.ip == "10.9.9.9"


def test_it_keeps_the_proxy_when_it_sent_no_forwarded_header():
    assert client_address(peer="10.0.0.2", headers=[], trusted=PROXY).ip == "10.0.0.2"


def test_it_stops_at_an_entry_that_is_not_an_address():
    found = client_address(peer="10.0.0.2", headers=_xff("198.51.100.7, unknown, 10.1.1.1"),
                           trusted=PROXY)
    assert found.ip == "10.1.1.1"


def test_it_understands_ipv6_and_ipv4_mapped_peers():
    found = client_address(peer="::ffff:10.0.0.2", headers=_xff("[2001:db8::1]:443"),
                           trusted=PROXY)
    assert found.ip == "2001:db8::1"
    assert client_address(peer="fd00::1", headers=_xff("2001:db8::2"),
                          trusted=PROXY).ip == "2001:db8::2"


def test_it_believes_the_forwarded_scheme_only_from_a_trusted_peer():
    headers = [(b"x-forwarded-proto", b"https")]
    assert client_address(peer="10.0.0.2", headers=headers, trusted=PROXY,
                          scheme="http").scheme == "https"
    assert client_address(peer="203.0.113.5", headers=headers, trusted=PROXY,
                          scheme="http").scheme == "http"


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "proxy.internal", "1.2.3"])
def test_it_refuses_an_entry_that_is_neither_an_address_nor_a_network(bad):
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        parse_trusted_proxies([bad])


def test_the_settings_refuse_a_bad_trusted_proxies_value_at_start_up():
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup()"],
        env={"DJANGO_SETTINGS_MODULE": "neonpro.settings", "DEBUG": "true",
             "TRUSTED_PROXIES": "10.0.0.0/8,not-an-address", "PATH": ""},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'not-an-address' is not an IP address" in result.stderr


def _run_middleware(scope: dict) -> dict:
    seen: dict = {}

    async def app(inner_scope, receive, send):
        seen.update(inner_scope)

    asyncio.run(ClientAddressMiddleware(app)(scope, None, None))
    return seen


def test_the_middleware_sets_the_client_of_http_and_websocket_scopes(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.7"), (b"x-forwarded-proto", b"https")]
    http = _run_middleware({"type": "http", "client": ["127.0.0.1", 5000], "headers": headers,
                            "scheme": "http"})
    ws = _run_middleware({"type": "websocket", "client": ["127.0.0.1", 5000],
                          "headers": headers, "scheme": "ws"})
    assert scope_client_ip(http) == scope_client_ip(ws) == "198.51.100.7"
    assert (http["scheme"], ws["scheme"]) == ("https", "wss")


def test_the_middleware_drops_forwarded_headers_of_an_untrusted_peer(settings):
    settings.TRUSTED_PROXIES = []
    headers = [(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https"),
               (b"accept", b"*/*")]
    seen = _run_middleware({"type": "http", "client": ["203.0.113.5", 5000],
                            "headers": headers, "scheme": "http"})
    assert scope_client_ip(seen) == "203.0.113.5"
    assert seen["headers"] == [(b"accept", b"*/*")]
    assert seen["scheme"] == "http"
