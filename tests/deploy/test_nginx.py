"""The reverse proxy of the compose deployment (deploy/nginx/neonpro.conf), checked by
Debian's nginx and run for real on loopback in front of the web process: the WebSocket
chat and SSE answers pass through it, bodies over the limit get the API's JSON error, and
a client's forged X-Forwarded-For does not change the address the app sees."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import httpx
import orjson
import pytest

from monitoring import smoke
from tests.deploy import support
from tests.deploy.support import MONITORING_TOKEN, SMOKE_PASSWORD, SMOKE_USERNAME
from tests.support import free_port

CONFIG = support.ROOT / "deploy" / "nginx" / "neonpro.conf"
UPSTREAM = "server web:8000;"
LISTEN = "listen 80;"
ACCESS_LOG = "access_log /var/log/nginx/access.log neonpro_json;"


def render(*, listen_port: int, upstream_port: int, prefix) -> tuple:
    """The repository's configuration with loopback addresses, in a main nginx.conf of
    its own under `prefix` (pid, temp files, logs): (path of nginx.conf, site text)."""
    site = CONFIG.read_text(encoding="utf-8")
    assert UPSTREAM in site and LISTEN in site and ACCESS_LOG in site, \
        "the compose addresses moved in the config"
    site = site.replace(ACCESS_LOG, f"access_log {prefix / 'access.log'} neonpro_json;")
    site = site.replace(UPSTREAM, f"server 127.0.0.1:{upstream_port};")
    site = site.replace(LISTEN, f"listen 127.0.0.1:{listen_port};")
    (prefix / "neonpro.conf").write_text(site, encoding="utf-8")
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, nginx's workers would switch to "nobody", who cannot enter pytest's
    # private temporary directories.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = (f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log stderr notice;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    access_log off;\n{temp}\n    include {prefix / 'neonpro.conf'};\n}}\n")
    path = prefix / "nginx.conf"
    path.write_text(main, encoding="utf-8")
    return path, site


def _nginx(conf, prefix, *args: str) -> list[str]:
    binary = support.tool("nginx", "nginx")
    return [binary, "-p", str(prefix), "-c", str(conf), "-e", "stderr", *args]


@pytest.fixture(scope="module")
def proxied(pgbouncer, migrated_template, simulator, tmp_path_factory):
    """The web process trusting loopback (where nginx runs) behind a real nginx."""
    name = support.unique_database_name("proxied")
    support.create_database(name, template=migrated_template)
    workdir = tmp_path_factory.mktemp("proxied")
    env = support.production_env(database_url=pgbouncer.url(name), simulator_url=simulator.url,
                                 NEONPRO_VAR_DIR=str(workdir), LOG_LEVEL="info",
                                 TRUSTED_PROXIES="127.0.0.1/32,::1")
    support.manage("seed_smoke_account", "--username", SMOKE_USERNAME,
                   env={**env, "SMOKE_TEST_PASSWORD": SMOKE_PASSWORD})
    web = support.start_daphne(env, workdir / "web.log")
    port = free_port()
    conf, _ = render(listen_port=port, upstream_port=int(web.url.rsplit(":", 1)[1]),
                     prefix=workdir)
    log = (workdir / "nginx.log").open("wb")
    nginx = subprocess.Popen(_nginx(conf, workdir), stdout=log,  # noqa: S603
                             stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        if nginx.poll() is not None:
            raise AssertionError((workdir / "nginx.log").read_text())
        try:
            return httpx.get(f"{url}/api/health/live", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        support.wait_until(serving, timeout=60, what="nginx to proxy the web process")
        yield type("Proxied", (), {"url": url, "web": web, "workdir": workdir})
    finally:
        nginx.terminate()
        nginx.wait(timeout=20)
        support.stop_daphne(web)
        support.drop_database(name)


def test_the_configuration_passes_nginx_t(tmp_path):
    conf, site = render(listen_port=free_port(), upstream_port=free_port(), prefix=tmp_path)

    result = subprocess.run(_nginx(conf, tmp_path, "-t"), capture_output=True,  # noqa: S603
                            text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
    # The forwarded headers are set from the connection, never appended to the client's.
    assert "$proxy_add_x_forwarded_for" not in site
    assert site.count("proxy_set_header X-Forwarded-For $remote_addr;") == 2
    assert site.count("proxy_buffering off;") == 2


def test_the_smoke_test_passes_through_the_proxy_websocket_included(proxied):
    report = smoke.run(smoke.SmokeConfig(
        url=proxied.url, monitoring_token=MONITORING_TOKEN, username=SMOKE_USERNAME,
        password=SMOKE_PASSWORD, timeout=20.0, chat_timeout=60.0))

    assert report.ok, report.render()
    assert report.result("chat_message").status == "PASS", report.render()


def _bearer(url: str) -> dict[str, str]:
    tokens = httpx.post(f"{url}/api/v1/auth/token/", timeout=30,
                        json={"username": SMOKE_USERNAME, "password": SMOKE_PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['access']}"}


def test_an_sse_answer_streams_through_the_proxy(proxied, simulator):
    auth = _bearer(proxied.url)
    consent = httpx.post(f"{proxied.url}/api/v1/compliance/consents/", headers=auth,
                         json={"purpose": "ai_chat", "accepted": True}, timeout=30)
    assert consent.status_code in (200, 201), consent.text
    session = httpx.post(f"{proxied.url}/api/v1/ai-chat/sessions/", headers=auth,
                         json={"title": "proxy"}, timeout=30)
    assert session.status_code == 201, session.text
    simulator.configure(token_delay_ms=60, answer_tokens=30)

    arrivals: list[tuple[float, bytes]] = []
    started = time.monotonic()
    with httpx.stream("POST", f"{proxied.url}/api/v1/ai-chat/sessions/"
                      f"{session.json()['id']}/messages/",
                      headers={**auth, "Accept": "text/event-stream"},
                      json={"content": "Quais os sinais de desidratação?",
                            "client_id": str(uuid.uuid4())}, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_raw():
            arrivals.append((time.monotonic() - started, chunk))
    body = b"".join(chunk for _, chunk in arrivals)

    assert b"event: done" in body, body[-500:]
    first_token = next(t for t, chunk in arrivals if b"event: token" in chunk)
    finished = arrivals[-1][0]
    # 30 tokens 60 ms apart: a proxy that buffered would deliver them all at the end.
    assert finished - first_token > 1.0, (first_token, finished)
    assert len(arrivals) > 5


def test_the_proxy_refuses_an_over_long_body_with_the_json_error(proxied):
    response = httpx.post(f"{proxied.url}/api/v1/auth/token/", content=b"x" * (300 * 1024),
                          headers={"Content-Type": "application/json"}, timeout=30)

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert orjson.loads(response.content) == {
        "code": "message_too_long", "detail": "Request bodies are limited to 262144 bytes."}


def test_the_proxy_logs_json_lines_without_query_strings(proxied):
    cpf, name = "52998224725", "Maria Aparecida da Silva"
    response = httpx.get(f"{proxied.url}/admin/compliance/auditevent/",
                         params={"q": f"{cpf} {name}"}, timeout=30)
    assert response.status_code in (200, 302)

    def logged() -> list[dict]:
        path = proxied.workdir / "access.log"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return [orjson.loads(line) for line in lines]

    support.wait_until(lambda: any(line["path"] == "/admin/compliance/auditevent/"
                                   for line in logged()),
                       timeout=10, what="nginx to log the admin search")
    text = (proxied.workdir / "access.log").read_text(encoding="utf-8")
    assert cpf not in text and "Maria" not in text and "q=" not in text
    assert all(line["service"] == "proxy" for line in logged())


def test_a_forged_forwarded_for_does_not_change_the_address_the_app_sees(proxied):
    def sign_in(n: int, password: str) -> httpx.Response:
        return httpx.post(f"{proxied.url}/api/v1/auth/token/", timeout=30,
                          headers={"X-Forwarded-For": f"203.0.113.{n + 1}",
                                   "X-Real-IP": f"198.51.100.{n + 1}"},
                          json={"username": f"guess-{n}" if password == "wrong"
                                else SMOKE_USERNAME, "password": password})

    statuses = [sign_in(n, "wrong").status_code for n in range(20)]
    assert statuses[:19] == [401] * 19

    # nginx replaced every forged header with the connection's address (loopback): the
    # app counted all 20 failures against one client, which is now locked out.
    locked = sign_in(99, SMOKE_PASSWORD)
    assert locked.status_code == 429, locked.text
    assert locked.json()["code"] == "rate_limited"
