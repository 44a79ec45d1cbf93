"""Security headers and cookies of the production configuration (DEBUG off, behind a
TLS-terminating proxy), on a page, an API response and the admin; and no inline
script in the templates, so the strict CSP holds."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.security.conftest import ROOT, server_env
from tests.support import subprocess_database_url as database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]

PASSWORD = "correct-horse-battery-staple"
HTTPS = {"X-Forwarded-Proto": "https"}  # what the proxy in front of daphne sends


@pytest.fixture
def production(own_redis, start_server, simulator):
    # The tests play the proxy, on loopback: it must be trusted for its X-Forwarded-Proto
    # to count (neonpro.client_address).
    return start_server(server_env(database=database_url(), redis=own_redis.url,
                                   simulator_url=simulator.url, TRUSTED_PROXIES="127.0.0.1"))


def _assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["Strict-Transport-Security"] == \
        "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    csp = dict(part.strip().split(" ", 1) for part in
               headers["Content-Security-Policy"].split(";") if part.strip())
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert "unsafe" not in headers["Content-Security-Policy"]
    assert csp["frame-ancestors"] == "'none'"
    assert csp["form-action"] == "'self'"


def _cookie(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


def _assert_locked_cookie(header: str) -> None:
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"secure", "httponly", "samesite"} <= attributes, header
    assert "SameSite=Lax" in header and "Path=/" in header and "Domain" not in header


def test_it_sends_security_headers_on_pages_api_and_admin(production):
    with httpx.Client(base_url=production.url, headers=HTTPS, timeout=15) as http:
        for path, status in [("/login/", 200), ("/api/v1/ai-chat/sessions/", 401),
                             ("/admin/login/", 200), ("/api/health/live", 200)]:
            response = http.get(path)
            assert response.status_code == status, path
            _assert_security_headers(response)


def test_it_redirects_plain_http_to_https_but_not_the_probes(own_redis, start_server,
                                                             simulator):
    server = start_server(server_env(database=database_url(), redis=own_redis.url,
                                     simulator_url=simulator.url, SECURE_SSL_REDIRECT="true"))
    with httpx.Client(base_url=server.url, timeout=15) as http:
        redirect = http.get("/login/")
        assert redirect.status_code == 301
        assert redirect.headers["Location"].startswith("https://")
        assert http.get("/api/health/live").status_code == 200  # orchestrators use http
        # No proxy is trusted here: a client's own X-Forwarded-Proto does not make
        # plain HTTP count as HTTPS.
        assert http.get("/login/", headers=HTTPS).status_code == 301


def test_it_sets_secure_host_only_http_only_cookies(production, make_user):
    make_user(username="dra-cookie")
    with httpx.Client(base_url=production.url, headers=HTTPS, timeout=15) as http:
        page = http.get("/login/")
        csrf_cookie = _cookie(page, "__Host-csrftoken")
        _assert_locked_cookie(csrf_cookie)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        signed_in = http.post(
            "/login/", data={"username": "dra-cookie", "password": PASSWORD,
                             "csrfmiddlewaretoken": token},
            headers={**HTTPS, "Referer": f"https://127.0.0.1:{production.port}/login/",
                     "Cookie": csrf_cookie.split(";")[0]})
        assert signed_in.status_code == 302, signed_in.text[:500]
        _assert_locked_cookie(_cookie(signed_in, "__Host-sessionid"))


def test_it_refuses_a_cross_site_form_post(production, make_user):
    make_user(username="dra-csrf")
    with httpx.Client(base_url=production.url, headers=HTTPS, timeout=15) as http:
        response = http.post("/login/", data={"username": "dra-csrf", "password": PASSWORD},
                             headers={**HTTPS, "Referer": "https://evil.example/"})
        assert response.status_code == 403
        assert "__Host-sessionid" not in response.headers.get("set-cookie", "")


# --- No inline code in the UI (the CSP forbids it) -------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>",
                           re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def test_it_keeps_inline_scripts_out_of_the_templates():
    templates = sorted((ROOT / "templates").rglob("*.html"))
    assert templates
    for template in templates:
        text = template.read_text()
        name = template.relative_to(ROOT)
        assert not INLINE_SCRIPT.search(text), f"inline <script> in {name}"
        assert not EVENT_HANDLER.search(text), f"inline event handler in {name}"


def test_it_keeps_eval_out_of_the_scripts():
    vendored = ROOT / "static" / "vendor"
    for script in sorted(Path(ROOT / "static").rglob("*.js")):
        if vendored in script.parents:
            # Pinned third-party files (versions and checksums in static/vendor/README.md):
            # DOMPurify parses through innerHTML of an inert document by design.
            continue
        text = script.read_text()
        assert not re.search(r"\beval\s*\(|new Function\s*\(|\.innerHTML\s*=", text), script
