"""Post-deployment smoke test: the deployment plan's checklist against a running instance.

Checks, in order (one line each in the report: PASS/FAIL/SKIP, duration, reason):

- ``health_live``, ``health_ready``, ``health_system`` (``/api/health``) and
  ``health_ai_chat`` (``/api/v1/ai-chat/health``) respond with the shapes of the
  contract and are not unhealthy / unavailable; the chat's compliance switches
  (PII redaction, audit logging, consent validation) are all on;
- ``database``: the database of the health details is reachable (needs the
  monitoring token: details are hidden without it);
- ``ai_providers``: every configured provider passes the health view's light
  probe (``GET models``, cached for about 30 s) — never a paid completion;
- ``auth_token`` and ``auth_refresh``: a JWT pair for the dedicated smoke-test
  account (``manage.py seed_smoke_account``) and a refresh of it;
- ``chat_consent``, ``chat_session``, ``chat_message``, ``chat_history``,
  ``chat_close``: consent if the account needs it, a new session, one message
  over the WebSocket answered with ack → token… → done, the stored exchange
  read back over REST, the session closed. On production **the message goes
  to the real provider** (one short, PII-free question: a paid completion of a
  few tokens); ``skip_chat`` leaves the chat out.

The module is plain Python (aiohttp, no Django), so it runs against any
instance from anywhere: ``python manage.py smoke_test --url URL`` or
``python -m monitoring.smoke --url URL``. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

# Synthetic and free of personal data: it is sent to the real provider on production.
DEFAULT_MESSAGE = "Teste automático pós-implantação: responda apenas com a palavra OK."
SESSION_TITLE = "smoke test"

_HEALTHY_SYSTEM = ("healthy", "degraded")
_HEALTHY_CHAT = ("operational", "degraded")
# A provider whose probe is still running when the health view stops waiting
# shows as "unknown"; the probe finishes and is cached, so asking again shortly
# after gives its verdict.
_PROVIDER_SETTLE_S = 15.0
_PROVIDER_POLL_S = 0.5
_CLOSE_CODES = {4401: "unauthenticated", 4403: "forbidden", 4404: "session not found",
                4409: "session ended"}


@dataclass(frozen=True)
class SmokeConfig:
    """What to test and with which credentials."""

    url: str
    monitoring_token: str = ""
    username: str = ""
    password: str = ""
    skip_chat: bool = False
    timeout: float = 30.0
    chat_timeout: float = 120.0
    message: str = DEFAULT_MESSAGE
    origin: str | None = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    name: str
    status: str
    duration_ms: float
    reason: str


@dataclass
class SmokeReport:
    """Every check's result, in the order they ran."""

    url: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed (skipped checks do not fail the run)."""
        return all(result.status != FAIL for result in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [result for result in self.results if result.status == FAIL]

    def result(self, name: str) -> CheckResult:
        """The result of the check called `name` (KeyError if it did not run)."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def render(self) -> str:
        """The human-readable report: one line per check and a verdict."""
        width = max((len(r.name) for r in self.results), default=10)
        lines = [f"Smoke test of {self.url}"]
        for r in self.results:
            lines.append(f"{r.status:<4}  {r.name:<{width}}  {r.duration_ms:>7.0f} ms  {r.reason}")
        if self.ok:
            lines.append(f"smoke test PASSED ({len(self.results)} checks)")
        else:
            names = ", ".join(r.name for r in self.failed)
            lines.append(f"smoke test FAILED: {len(self.failed)} of {len(self.results)} "
                         f"checks failed ({names})")
        return "\n".join(lines)

    def as_json(self) -> str:
        """The report as a JSON document, for pipelines."""
        return json.dumps({"url": self.url, "ok": self.ok,
                           "results": [asdict(r) for r in self.results]}, ensure_ascii=False)


class CheckFailed(Exception):
    """Raised inside a check: the check fails with this reason."""


class CheckSkipped(Exception):
    """Raised inside a check: the check is skipped with this reason."""


@dataclass
class _Response:
    status: int
    body: Any
    headers: dict[str, str]


def _ws_url(base_url: str, path: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def _describe_error(exc: BaseException) -> str:
    # Types and the short message of connection errors only: never request bodies.
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.__class__.__name__}: {exc.os_error.strerror})"
    return f"{type(exc).__name__}: {exc}"[:200]


class _Runner:
    def __init__(self, config: SmokeConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.http = http
        self.base = config.url.rstrip("/")
        self.report = SmokeReport(url=self.base)
        self.system_health: dict[str, Any] | None = None
        self.chat_health: dict[str, Any] | None = None
        self.access: str | None = None
        self.refresh: str | None = None
        self.session_id: str | None = None
        self.answer: dict[str, Any] | None = None

    # -- plumbing ----------------------------------------------------------------

    async def check(self, name: str, function: Callable[[], Awaitable[str]]) -> CheckResult:
        started = time.perf_counter()
        try:
            status, reason = PASS, await function()
        except CheckFailed as exc:
            status, reason = FAIL, str(exc)
        except CheckSkipped as exc:
            status, reason = SKIP, str(exc)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            status, reason = FAIL, _describe_error(exc)
        result = CheckResult(name, status, round((time.perf_counter() - started) * 1000, 1),
                             reason)
        self.report.results.append(result)
        return result

    def _headers(self, *, bearer: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "neonpro-smoke-test"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return headers

    async def request(self, method: str, path: str, *, json_body: Any = None,
                      bearer: str | None = None) -> _Response:
        # Redirects are not followed: a redirect to https means the URL given is not
        # the one clients use, and following it would hide that.
        async with self.http.request(
            method, self.base + path, json=json_body, headers=self._headers(bearer=bearer),
            allow_redirects=False,
        ) as response:
            text = await response.text()
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = None
            if 300 <= response.status < 400:
                raise CheckFailed(f"HTTP {response.status} redirect to "
                                  f"{response.headers.get('Location', '?')}: use that URL")
            return _Response(response.status, body, dict(response.headers))

    @staticmethod
    def _error_of(response: _Response) -> str:
        body = response.body if isinstance(response.body, dict) else {}
        code = body.get("code") or body.get("status") or ""
        return f"HTTP {response.status}" + (f" {code}" if code else "")

    # -- health ------------------------------------------------------------------

    async def health_live(self) -> str:
        response = await self.request("GET", "/api/health/live")
        body = response.body or {}
        if response.status != 200 or body.get("status") != "ok":
            raise CheckFailed(f"expected 200 ok, got {self._error_of(response)}")
        return f"ok, version {body.get('version')}"

    async def health_ready(self) -> str:
        response = await self.request("GET", "/api/health/ready")
        body = response.body or {}
        if response.status != 200 or body.get("status") != "ready":
            failed = [name for name, state in (body.get("checks") or {}).items() if state != "ok"]
            raise CheckFailed(f"not ready ({self._error_of(response)}); failed: "
                              f"{', '.join(failed) or 'unknown'}")
        return "ready: " + ", ".join(f"{k} {v}" for k, v in (body.get("checks") or {}).items())

    async def _get_system_health(self) -> _Response:
        response = await self.request("GET", "/api/health", bearer=self.config.monitoring_token)
        if isinstance(response.body, dict):
            self.system_health = response.body
        return response

    async def health_system(self) -> str:
        response = await self._get_system_health()
        body = response.body if isinstance(response.body, dict) else {}
        missing = {"status", "timestamp", "version"} - set(body)
        if missing:
            raise CheckFailed(f"{self._error_of(response)}, report lacks {sorted(missing)}")
        status = body["status"]
        if response.status != 200 or status not in _HEALTHY_SYSTEM:
            raise CheckFailed(f"status {status} (HTTP {response.status})")
        services = body.get("services") or {}
        not_healthy = [name for name, svc in services.items()
                       if name != "aiProviders" and (svc or {}).get("status") != "healthy"]
        not_healthy += [f"aiProviders.{n}" for n, p in (services.get("aiProviders") or {}).items()
                        if (p or {}).get("status") != "healthy"]
        suffix = f" ({', '.join(not_healthy)} not healthy)" if not_healthy else ""
        details = "" if services else ", no details (monitoring token missing or refused)"
        return f"{status}, version {body['version']}{suffix}{details}"

    async def health_ai_chat(self) -> str:
        response = await self.request("GET", "/api/v1/ai-chat/health",
                                      bearer=self.config.monitoring_token)
        body = response.body if isinstance(response.body, dict) else {}
        if "status" not in body:
            raise CheckFailed(f"{self._error_of(response)}, report lacks status")
        self.chat_health = body
        status = body["status"]
        if response.status != 200 or status not in _HEALTHY_CHAT:
            raise CheckFailed(f"status {status} (HTTP {response.status})")
        compliance = body.get("compliance")
        if compliance is None:
            return f"{status}, no details (monitoring token missing or refused)"
        # The switches are the booleans (piiRedactionActive, ...); piiPolicy describes
        # how redaction handles each type and is not a switch.
        off = [name for name, active in compliance.items()
               if isinstance(active, bool) and active is not True]
        if off:
            raise CheckFailed(f"{status}, compliance controls off: {', '.join(off)}")
        capacity = body.get("sessionCapacity") or {}
        return (f"{status}, compliance controls on, sessions {capacity.get('current')}/"
                f"{capacity.get('maximum')}")

    def _details(self) -> dict[str, Any]:
        if self.system_health is None:
            raise CheckFailed("no /api/health report to read")
        services = self.system_health.get("services")
        if not isinstance(services, dict):
            raise CheckFailed("/api/health gave no details: pass --monitoring-token "
                              "(or set MONITORING_TOKEN)")
        return services

    async def database(self) -> str:
        database = self._details().get("database") or {}
        status = database.get("status")
        if status not in ("healthy", "degraded"):
            raise CheckFailed(f"database {status or 'missing from the report'}")
        connections = database.get("connections") or {}
        note = " (slow)" if status == "degraded" else ""
        return (f"{status}{note}, SELECT 1 in {database.get('responseTime')} ms, connections "
                f"active/idle/total {connections.get('active')}/{connections.get('idle')}/"
                f"{connections.get('total')}")

    async def ai_providers(self) -> str:
        providers = self._details().get("aiProviders") or {}
        deadline = time.monotonic() + _PROVIDER_SETTLE_S
        while any((p or {}).get("status") == "unknown" for p in providers.values()) \
                and time.monotonic() < deadline:
            await asyncio.sleep(_PROVIDER_POLL_S)  # the cached probe result is coming
            await self._get_system_health()
            providers = self._details().get("aiProviders") or {}
        if not providers:
            raise CheckFailed("no AI provider is configured")
        summary = ", ".join(
            f"{name} {(p or {}).get('status')} ({(p or {}).get('responseTime')} ms)"
            for name, p in providers.items()
        )
        bad = [name for name, p in providers.items()
               if (p or {}).get("status") not in ("healthy", "degraded")]
        if bad:
            raise CheckFailed(f"{', '.join(bad)} failed the light probe: {summary}")
        failover = ((self.chat_health or {}).get("providerStatus") or {}).get("failoverReady")
        return summary + ("" if failover is None else f"; failover ready: {failover}")

    # -- authentication ---------------------------------------------------------------

    async def auth_token(self) -> str:
        if not (self.config.username and self.config.password):
            raise CheckFailed("no smoke-test account: pass --username/--password or set "
                              "SMOKE_TEST_USERNAME/SMOKE_TEST_PASSWORD")
        response = await self.request(
            "POST", "/api/v1/auth/token/",
            json_body={"username": self.config.username, "password": self.config.password},
        )
        body = response.body if isinstance(response.body, dict) else {}
        if response.status != 200 or not body.get("access") or not body.get("refresh"):
            raise CheckFailed(f"token obtain refused: {self._error_of(response)}")
        self.access, self.refresh = body["access"], body["refresh"]
        return "access and refresh tokens issued"

    async def auth_refresh(self) -> str:
        if self.refresh is None:
            raise CheckSkipped("needs auth_token")
        response = await self.request("POST", "/api/v1/auth/token/refresh/",
                                      json_body={"refresh": self.refresh})
        body = response.body if isinstance(response.body, dict) else {}
        if response.status != 200 or not body.get("access"):
            raise CheckFailed(f"refresh refused: {self._error_of(response)}")
        self.access = body["access"]  # the chat below proves the refreshed token works
        self.refresh = body.get("refresh", self.refresh)
        return "refreshed access token issued"

    # -- sample chat -----------------------------------------------------------------------

    def _need_token(self) -> str:
        if self.access is None:
            raise CheckSkipped("needs a token (auth_token failed)")
        return self.access

    async def chat_consent(self) -> str:
        token = self._need_token()
        response = await self.request("GET", "/api/v1/compliance/consents/", bearer=token)
        body = response.body if isinstance(response.body, dict) else {}
        if response.status != 200 or "consent_required" not in body:
            raise CheckFailed(f"consent status unreadable: {self._error_of(response)}")
        if not body["consent_required"]:
            return f"consent already granted (terms {body.get('terms_version')})"
        granted = await self.request("POST", "/api/v1/compliance/consents/", bearer=token,
                                     json_body={"purpose": "ai_chat", "accepted": True})
        if granted.status != 201:
            raise CheckFailed(f"consent grant refused: {self._error_of(granted)}")
        return f"consent granted now (terms {body.get('terms_version')})"

    async def chat_session(self) -> str:
        token = self._need_token()
        response = await self.request("POST", "/api/v1/ai-chat/sessions/", bearer=token,
                                      json_body={"title": SESSION_TITLE})
        body = response.body if isinstance(response.body, dict) else {}
        if response.status != 201 or not body.get("id"):
            raise CheckFailed(f"session not created: {self._error_of(response)}")
        self.session_id = str(body["id"])
        expected = f"/ws/ai-chat/{self.session_id}/"
        if not str(body.get("websocket_url", "")).endswith(expected):
            raise CheckFailed(f"session {self.session_id} created but websocket_url is "
                              f"{body.get('websocket_url')!r}")
        return f"session {self.session_id} {body.get('status')}"

    async def chat_message(self) -> str:
        token = self._need_token()
        if self.session_id is None:
            raise CheckSkipped("needs chat_session")
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "neonpro-smoke-test"}
        if self.config.origin:
            headers["Origin"] = self.config.origin
        client_id = str(uuid.uuid4())
        url = _ws_url(self.base, f"/ws/ai-chat/{self.session_id}/")
        async with self.http.ws_connect(url, headers=headers, heartbeat=None,
                                        max_msg_size=0) as ws:
            await ws.send_json({"type": "message", "content": self.config.message,
                                "client_id": client_id})
            frames = await self._frames_until_final(ws)
        ack, final = frames[0], frames[-1]
        if final.get("type") == "error":
            raise CheckFailed(f"error frame {final.get('code')}: {final.get('detail')}")
        if ack.get("type") != "ack" or ack.get("client_id") != client_id:
            raise CheckFailed(f"first frame was {ack.get('type')!r}, expected the ack of the "
                              "message")
        tokens = [f for f in frames if f.get("type") == "token"]
        if not tokens:
            raise CheckFailed("done without any token frame")
        self.answer = {"user_message_id": ack.get("message_id"),
                       "message_id": final.get("message_id")}
        resets = sum(1 for f in frames if f.get("type") == "reset")
        note = f", {resets} failover reset(s)" if resets else ""
        return (f"ack, {len(tokens)} token frames, done by {final.get('provider')}/"
                f"{final.get('model')} (first token {final.get('first_token_ms')} ms, "
                f"total {final.get('latency_ms')} ms){note}")

    async def _frames_until_final(self, ws: aiohttp.ClientWebSocketResponse) -> list[dict]:
        frames: list[dict] = []
        deadline = time.monotonic() + self.config.chat_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CheckFailed(f"no done frame within {self.config.chat_timeout:.0f} s "
                                  f"({len(frames)} frames received)")
            message = await ws.receive(timeout=remaining)
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                aiohttp.WSMsgType.CLOSING):
                code = ws.close_code
                raise CheckFailed(f"WebSocket closed with code {code} "
                                  f"({_CLOSE_CODES.get(code, 'unexpected')})")
            if message.type == aiohttp.WSMsgType.ERROR:
                raise CheckFailed(f"WebSocket error: {_describe_error(ws.exception())}")
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            frames.append(frame)
            if frame.get("type") in ("done", "error"):
                return frames

    async def chat_history(self) -> str:
        token = self._need_token()
        if self.answer is None or self.session_id is None:
            raise CheckSkipped("needs chat_message")
        response = await self.request(
            "GET", f"/api/v1/ai-chat/sessions/{self.session_id}/messages/", bearer=token)
        messages = response.body if isinstance(response.body, list) else None
        if response.status != 200 or messages is None:
            raise CheckFailed(f"messages unreadable: {self._error_of(response)}")
        by_id = {str(m.get("id")): m for m in messages}
        question = by_id.get(str(self.answer["user_message_id"]))
        answer = by_id.get(str(self.answer["message_id"]))
        if question is None or answer is None:
            raise CheckFailed(f"the exchange is not stored ({len(messages)} messages found)")
        if question.get("content") != self.config.message:
            raise CheckFailed("the stored question differs from the one sent")
        if answer.get("status") != "complete" or not answer.get("content"):
            raise CheckFailed(f"the stored answer is {answer.get('status')}")
        return f"question and answer stored ({len(messages)} messages in the session)"

    async def chat_close(self) -> str:
        token = self._need_token()
        if self.session_id is None:
            raise CheckSkipped("needs chat_session")
        response = await self.request(
            "POST", f"/api/v1/ai-chat/sessions/{self.session_id}/close/", bearer=token)
        body = response.body if isinstance(response.body, dict) else {}
        if response.status != 200 or body.get("status") != "closed":
            raise CheckFailed(f"session not closed: {self._error_of(response)}")
        return f"session {self.session_id} closed"

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> SmokeReport:
        checks: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("health_live", self.health_live),
            ("health_ready", self.health_ready),
            ("health_system", self.health_system),
            ("health_ai_chat", self.health_ai_chat),
            ("database", self.database),
            ("ai_providers", self.ai_providers),
            ("auth_token", self.auth_token),
            ("auth_refresh", self.auth_refresh),
        ]
        for name, function in checks:
            await self.check(name, function)
        if self.config.skip_chat:
            await self.check("chat", self._skipped_chat)
            return self.report
        for name, function in [("chat_consent", self.chat_consent),
                               ("chat_session", self.chat_session),
                               ("chat_message", self.chat_message),
                               ("chat_history", self.chat_history)]:
            await self.check(name, function)
        # Always close a session that was opened, whatever happened in between.
        await self.check("chat_close", self.chat_close)
        return self.report

    async def _skipped_chat(self) -> str:
        raise CheckSkipped("sample chat skipped (--skip-chat): no completion requested")


async def run_smoke_test(config: SmokeConfig) -> SmokeReport:
    """Run every check against `config.url` and return the report (never raises for a
    failing check; each failure is a FAIL line)."""
    timeout = aiohttp.ClientTimeout(total=config.timeout)
    # trust_env: honour HTTPS_PROXY and friends like any other operator tool.
    async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as http:
        return await _Runner(config, http).run()


def run(config: SmokeConfig) -> SmokeReport:
    """Synchronous wrapper of `run_smoke_test`."""
    return asyncio.run(run_smoke_test(config))


# --- command line ---------------------------------------------------------------------------


def env_secret(name: str, environ: dict[str, str] | None = None) -> str:
    """`NAME` from the environment, or the content of the file named by `NAME_FILE`."""
    environ = os.environ if environ is None else environ
    path = environ.get(f"{name}_FILE", "")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return environ.get(name, "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by `manage.py smoke_test` and `python -m monitoring.smoke`."""
    parser.add_argument("--url", required=True,
                        help="base URL of the instance, e.g. https://neonpro.com.br")
    parser.add_argument("--monitoring-token", default=None,
                        help="bearer token for health details (default: env MONITORING_TOKEN)")
    parser.add_argument("--username", default=None,
                        help="smoke-test account (default: env SMOKE_TEST_USERNAME)")
    parser.add_argument("--password", default=None,
                        help="its password (default: env SMOKE_TEST_PASSWORD or the file in "
                             "SMOKE_TEST_PASSWORD_FILE)")
    parser.add_argument("--skip-chat", action="store_true",
                        help="leave out the sample chat, which on production is a real (small) "
                             "paid completion by the primary provider")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds per HTTP request (default 30)")
    parser.add_argument("--chat-timeout", type=float, default=120.0,
                        help="seconds for the whole streamed answer (default 120)")
    parser.add_argument("--origin", default=None,
                        help="Origin header for the WebSocket (default: none, as an API client)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def config_from_options(options: dict[str, Any], *, default_token: str = "") -> SmokeConfig:
    """A SmokeConfig from parsed options, filling gaps from the environment."""
    return SmokeConfig(
        url=options["url"],
        monitoring_token=options.get("monitoring_token") or env_secret("MONITORING_TOKEN")
        or default_token,
        username=options.get("username") or env_secret("SMOKE_TEST_USERNAME"),
        password=options.get("password") or env_secret("SMOKE_TEST_PASSWORD"),
        skip_chat=bool(options.get("skip_chat")),
        timeout=float(options.get("timeout") or 30.0),
        chat_timeout=float(options.get("chat_timeout") or 120.0),
        origin=options.get("origin"),
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m monitoring.smoke`: run, print the report, exit 1 on any failure."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    report = run(config_from_options(options))
    print(report.as_json() if options["json"] else report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
