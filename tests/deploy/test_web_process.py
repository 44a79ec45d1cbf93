"""The web process as production runs it (`python -m neonpro.server`, DEBUG off, PostgreSQL
through PgBouncer, Redis): per-address limits that a forged X-Forwarded-For cannot bypass,
request bodies bounded before they are read, and output that is JSON lines only."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import psutil
import pytest

from tests.deploy import support
from tests.deploy.support import SMOKE_PASSWORD, SMOKE_USERNAME

TOKEN_PATH = "/api/v1/auth/token/"
BODY_LIMIT = 256 * 1024
HUGE_BODY = 600 * 1024 * 1024
CHUNK = 64 * 1024
CPF = "529.982.247-25"
FULL_NAME = "Maria Aparecida dos Santos"
ADMIN_USERNAME = "officer-admin"
ADMIN_PASSWORD = "officer-admin-password-for-deploy-tests"


def _start(database_name: str, pgbouncer, simulator, workdir, **overrides: str):
    env = support.production_env(database_url=pgbouncer.url(database_name),
                                 simulator_url=simulator.url, NEONPRO_VAR_DIR=str(workdir),
                                 LOG_LEVEL="info", **overrides)
    return env, support.start_daphne(env, workdir / "web.log")


@pytest.fixture(scope="module")
def web_database(pgbouncer, migrated_template):
    """One database for this module's servers, with the smoke account and a superuser."""
    name = support.unique_database_name("webprocess")
    support.create_database(name, template=migrated_template)
    env = support.subprocess_env(DEBUG="true", DATABASE_URL=pgbouncer.url(name))
    support.manage("seed_smoke_account", "--username", SMOKE_USERNAME,
                   env={**env, "SMOKE_TEST_PASSWORD": SMOKE_PASSWORD})
    support.manage("createsuperuser", "--noinput",
                   env={**env, "DJANGO_SUPERUSER_USERNAME": ADMIN_USERNAME,
                        "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
                        "DJANGO_SUPERUSER_EMAIL": "officer@example.com"})
    yield name
    support.drop_database(name)


@pytest.fixture(scope="module")
def web(web_database, pgbouncer, simulator, tmp_path_factory):
    """The web process with no trusted proxy (the default): the TCP peer is the client."""
    env, server = _start(web_database, pgbouncer, simulator, tmp_path_factory.mktemp("web"))
    yield server
    support.stop_daphne(server)


@pytest.fixture(scope="module")
def web_behind_proxy(web_database, pgbouncer, simulator, tmp_path_factory):
    """The web process trusting loopback as its reverse proxy."""
    env, server = _start(web_database, pgbouncer, simulator,
                         tmp_path_factory.mktemp("web-proxied"), TRUSTED_PROXIES="127.0.0.1")
    yield server
    support.stop_daphne(server)


def _sign_in(server, *, username: str, password: str, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return httpx.post(f"{server.url}{TOKEN_PATH}", json={"username": username,
                                                         "password": password},
                      headers=headers, timeout=30)


def _forged(n: int) -> str:
    return f"203.0.{n // 250}.{n % 250 + 1}"


# --- Forged X-Forwarded-For --------------------------------------------------------------


def test_it_keeps_the_per_address_token_limit_under_rotating_forged_addresses(web):
    # The refresh endpoint shares the 60/min per-address limit with sign-in and costs no
    # password hash, so 65 attempts fit well inside the minute; none can lock anything.
    # The limit counts in fixed one-minute windows of the clock (neonpro.ratelimit): start
    # the 65 requests early in a window, so that they all fall into the same one.
    if time.time() % 60 > 40:
        time.sleep(60 - time.time() % 60 + 0.1)
    statuses = [httpx.post(f"{web.url}{TOKEN_PATH}refresh/", json={"refresh": "forged"},
                           headers={"X-Forwarded-For": _forged(n)}, timeout=30).status_code
                for n in range(65)]

    assert statuses[:60] == [401] * 60
    assert statuses[60:] == [429] * 5


def test_it_keeps_the_address_lock_out_under_rotating_forged_addresses(web):
    # 20 failures (the per-address limit), each for another username so that only the
    # address can be what locks, each from another forged address.
    statuses = [_sign_in(web, username=f"guess-{n}", password="wrong",
                         forwarded=_forged(n)).status_code for n in range(20)]
    assert statuses[:19] == [401] * 19  # the 20th may already be answered as locked out

    right_password = _sign_in(web, username=SMOKE_USERNAME, password=SMOKE_PASSWORD,
                              forwarded=_forged(99))

    assert right_password.status_code == 429, right_password.text
    assert right_password.json()["code"] == "rate_limited"
    assert int(right_password.headers["Retry-After"]) > 0


def test_it_locks_the_right_most_untrusted_address_behind_a_trusted_proxy(web_behind_proxy):
    # The proxy (loopback, trusted) appended the client's address; the client forged
    # the entries before it. Only 198.51.100.7 made these 20 failed attempts.
    statuses = [_sign_in(web_behind_proxy, username=f"guess-{n}", password="wrong",
                         forwarded=f"{_forged(n)}, 198.51.100.7").status_code
                for n in range(20)]
    assert statuses[:19] == [401] * 19

    locked = _sign_in(web_behind_proxy, username=SMOKE_USERNAME, password=SMOKE_PASSWORD,
                      forwarded=f"{_forged(50)}, 198.51.100.7")
    other_client = _sign_in(web_behind_proxy, username=SMOKE_USERNAME,
                            password=SMOKE_PASSWORD, forwarded="198.51.100.7, 198.51.100.8")

    assert locked.status_code == 429, locked.text
    assert other_client.status_code == 200, other_client.text


def test_it_refuses_to_start_with_daphnes_proxy_headers_option():
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "neonpro.server", "--proxy-headers", "-p", "1",
         "neonpro.asgi:application"],
        cwd=support.ROOT, env=support.subprocess_env(DEBUG="true"), capture_output=True,
        text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "TRUSTED_PROXIES" in result.stderr


# --- Request bodies ------------------------------------------------------------------------


def _raw_post(server, *, headers: dict[str, str], chunks: Iterable[bytes],
              stop_when_answered: bool) -> tuple[int | None, bytes, int]:
    """POST through a raw socket: (status, body, bytes of body sent).

    `stop_when_answered` makes a polite client that stops sending once the server has
    answered; otherwise it pushes every chunk, as an attacker would."""
    address = urlsplit(server.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=60)
    head = [f"POST {TOKEN_PATH} HTTP/1.1", f"Host: {address.hostname}",
            "Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items())]
    sent = 0
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for chunk in chunks:
            if stop_when_answered and select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        response = b""
        try:
            while data := sock.recv(65536):
                response += data
        except (ConnectionResetError, TimeoutError):
            pass
    finally:
        sock.close()
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    body = response.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in response else b""
    return (int(match.group(1)) if match else None), body, sent


def _zeros(total: int) -> Iterator[bytes]:
    """`total` bytes in CHUNK pieces, made as they are sent (never all in memory)."""
    block = b"0" * CHUNK
    for _ in range(total // CHUNK):
        yield block


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


def _rss(server) -> int:
    return psutil.Process(server.process.pid).memory_info().rss


def test_it_refuses_an_over_long_content_length_before_reading_the_body(web):
    # Not a byte of the body is sent: the answer comes from the headers alone.
    status, body, sent = _raw_post(web, headers={"Content-Length": str(HUGE_BODY),
                                                 "Expect": "100-continue"},
                                   chunks=[], stop_when_answered=True)

    assert (status, sent) == (413, 0)
    assert orjson.loads(body) == {
        "code": "message_too_long",
        "detail": f"Request bodies are limited to {BODY_LIMIT} bytes."}


def test_it_refuses_a_chunked_body_as_soon_as_it_passes_the_limit(web):
    status, body, sent = _raw_post(web, headers={"Transfer-Encoding": "chunked"},
                                   chunks=_chunked(_zeros(HUGE_BODY)), stop_when_answered=True)

    assert status == 413
    assert orjson.loads(body)["code"] == "message_too_long"
    assert sent < 16 * 1024 * 1024


def test_it_reads_a_small_chunked_body(web):
    payload = orjson.dumps({"username": SMOKE_USERNAME, "password": SMOKE_PASSWORD})
    pieces = [payload[:10], payload[10:25], payload[25:]]

    status, body, _ = _raw_post(web, headers={"Transfer-Encoding": "chunked",
                                              "Connection": "close"},
                                chunks=_chunked(pieces), stop_when_answered=False)

    assert status == 200, body
    assert set(orjson.loads(body)) == {"access", "refresh"}


def test_it_accepts_a_body_just_within_the_limit(web):
    payload = b'{"username": "nobody", "password": "' + b"x" * (BODY_LIMIT - 40) + b'"}'
    assert len(payload) <= BODY_LIMIT

    status, body, _ = _raw_post(web, headers={"Content-Length": str(len(payload)),
                                              "Connection": "close"},
                                chunks=[payload], stop_when_answered=False)

    assert status == 401, body


def test_its_memory_stays_flat_after_600_mb_attempts(web):
    for _ in range(3):  # warm up: the first requests load code and fill caches
        _sign_in(web, username="nobody", password="wrong")
    before = _rss(web)

    declared = _raw_post(web, headers={"Content-Length": str(HUGE_BODY)},
                         chunks=_zeros(HUGE_BODY), stop_when_answered=False)
    chunked = _raw_post(web, headers={"Transfer-Encoding": "chunked"},
                        chunks=_chunked(_zeros(HUGE_BODY)), stop_when_answered=False)
    after = _rss(web)

    assert declared[2] + chunked[2] > 100 * 1024 * 1024, "the attempts sent little"
    assert after - before < 20 * 1024 * 1024, (before, after)
    # The answer, when the client could still read it, was the refusal.
    assert declared[0] in (413, None) and chunked[0] in (413, None)
    # Still serving.
    assert _sign_in(web, username="nobody", password="wrong").status_code == 401


# --- JSON lines only -----------------------------------------------------------------------


def _cookies(response: httpx.Response, jar: dict[str, str]) -> dict[str, str]:
    # DEBUG-off cookies are Secure; over loopback HTTP they are carried by hand.
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        jar[name] = rest.split(";", 1)[0]
    return jar


def _admin_session(server) -> tuple[httpx.Client, dict[str, str]]:
    client = httpx.Client(base_url=server.url, timeout=30)
    jar: dict[str, str] = {}
    page = client.get("/admin/login/")
    _cookies(page, jar)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed_in = client.post(
        "/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": ADMIN_USERNAME,
              "password": ADMIN_PASSWORD, "next": "/admin/"},
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()),
                 "Referer": f"{server.url}/admin/login/"})
    assert signed_in.status_code == 302, signed_in.text[:500]
    _cookies(signed_in, jar)
    return client, jar


def _lines(text: str) -> list[dict]:
    return [orjson.loads(raw) for raw in text.splitlines() if raw.strip()]


def test_every_line_it_prints_is_json_and_admin_searches_leave_no_personal_data(web):
    client, jar = _admin_session(web)
    cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    try:
        for query in (CPF, FULL_NAME, CPF.replace(".", "").replace("-", "")):
            page = client.get("/admin/auth/user/", params={"q": query}, headers=cookie)
            assert page.status_code == 200
    finally:
        client.close()
    _raw_post(web, headers={"Content-Length": str(HUGE_BODY)}, chunks=[],
              stop_when_answered=True)

    def searches() -> list[dict]:
        return [line for line in _lines(web.log()) if line["event"] == "http_request"
                and line["metadata"]["path"] == "/admin/auth/user/"]

    logged = support.wait_until(lambda: len(searches()) >= 3 and searches(), timeout=10,
                                what="the access log lines of the admin searches")
    text = web.log()
    lines = _lines(text)  # every line parses as one JSON object
    assert {line["metadata"]["query"] for line in logged} == {"q=[CPF]", "q=[NOME]"}
    assert all(line["metadata"]["client"] and line["traceId"] for line in logged)
    assert any(line["metadata"].get("reason") == "body_too_large" for line in lines)
    for fragment in (CPF, "52998224725", "529.982", "Aparecida", "Maria+Aparecida",
                     "127.0.0.1:"):
        assert fragment not in text


def _celery(kind: str, env: dict[str, str], workdir, ready: str) -> str:
    log_path = workdir / f"{kind}.log"
    extra = (["--pool=solo", "--concurrency=1"] if kind == "worker"
             else [f"--schedule={workdir / 'beat-schedule'}"])
    if os.geteuid() == 0:
        # The image runs as USER neonpro; here Celery would warn (before any logging is
        # set up) that it runs as root, which production never does.
        env = {**env, "PYTHONWARNINGS":
               "ignore:You're running the worker with superuser privileges"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "celery", "-A", "neonpro", "--quiet", kind,
             "--loglevel=INFO", *extra],
            cwd=support.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        support.wait_until(lambda: process.poll() is not None
                           or ready in log_path.read_text(errors="replace"),
                           timeout=90, what=f"celery {kind} to start")
        assert process.poll() is None, log_path.read_text(errors="replace")
    finally:
        process.terminate()
        process.wait(timeout=30)
    return log_path.read_text(errors="replace")


def test_every_line_the_worker_and_beat_print_is_json(web_database, pgbouncer, simulator,
                                                       tmp_path):
    env = support.production_env(database_url=pgbouncer.url(web_database),
                                 simulator_url=simulator.url, NEONPRO_VAR_DIR=str(tmp_path),
                                 LOG_LEVEL="info", CELERY_TASK_ALWAYS_EAGER="false")
    for kind, ready in (("worker", "ready"), ("beat", "Starting")):
        lines = _lines(_celery(kind, env, tmp_path, ready))
        assert lines, f"celery {kind} printed nothing"
        assert any(ready in line["message"] for line in lines)

