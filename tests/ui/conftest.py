"""Browser tests: the real ASGI app under daphne, PostgreSQL, Redis, the simulated
provider and headless Chromium.

pytest-django's live server speaks WSGI only, so the app runs in daphne
subprocesses instead, against a database of their own that this module creates,
migrates and drops. Test accounts are created in it by a `manage.py shell`
subprocess; tests read everything else back through the UI and the API.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT_S = 60
# The pages send a strict Content-Security-Policy; record anything it blocks.
_RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""
# Roles the tests sign in as; each test gets its own account so rate limits,
# consents and sessions never leak between tests.
MEMBERS = [
    "ana",
    "bruno",
    "carla",
    "davi",
    "elisa",
    "fabio",
    "gabi",
    "hugo",
    "igor",
    "joana",
    "karla",
    "lucas",
    "marina",
    "nina",
    "olga",
    "paulo",
    "rafa",
    "sara",
    "tiago",
    "ursula",
    "vera",
    "wagner",
    "xenia",
    "yara",
    "zeca",
    "alice",
    "beto",
    "cida",
    "dora",
]
OUTSIDERS = ["otavio"]

_SEED = """
import os
from django.contrib.auth import get_user_model
from clinics.models import Clinic, ClinicMembership
User = get_user_model()
clinic, _ = Clinic.objects.get_or_create(name="Clínica Teste da Interface")
password = os.environ["UI_TEST_PASSWORD"]
for name in os.environ["UI_TEST_MEMBERS"].split(","):
    user = User.objects.create_user(username=name, password=password,
                                    first_name=name.capitalize())
    ClinicMembership.objects.create(user=user, clinic=clinic)
for name in os.environ["UI_TEST_OUTSIDERS"].split(","):
    User.objects.create_user(username=name, password=password)
"""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def ui_database_url() -> Iterator[str]:
    """A PostgreSQL database for the daphne subprocesses, migrated, dropped at the end."""
    base_url = os.environ.get("DATABASE_URL", "")
    _require(
        base_url.startswith(("postgres://", "postgresql://")),
        "browser tests need DATABASE_URL pointing at PostgreSQL",
    )
    import psycopg

    base_name = os.environ.get("TEST_DATABASE_NAME") or "test_neonpro"
    name = f"{base_name}_ui"
    parts = urlsplit(base_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    url = urlunsplit(parts._replace(path=f"/{name}"))

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _manage(["migrate", "--noinput"], env=_base_env(url))
    yield url
    drop()


@pytest.fixture(scope="session")
def ui_accounts(ui_database_url) -> dict[str, str]:
    """username -> password; MEMBERS belong to a clinic, OUTSIDERS to none. No consents."""
    password = secrets.token_urlsafe(16)
    env = _base_env(ui_database_url) | {
        "UI_TEST_PASSWORD": password,
        "UI_TEST_MEMBERS": ",".join(MEMBERS),
        "UI_TEST_OUTSIDERS": ",".join(OUTSIDERS),
    }
    _manage(["shell", "-c", _SEED], env=env)
    return {name: password for name in MEMBERS + OUTSIDERS}


def _base_env(database_url: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # Real keys would turn the simulated provider off; a .env must not leak in.
        if key
        not in (
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "OPENAI_BASE_URL",
            "ANTHROPIC_BASE_URL",
            "DJANGO_SETTINGS_MODULE",
        )
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "neonpro.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "true",
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "NEONPRO_ENV_FILE": os.devnull,
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _manage(args: list[str], *, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        pytest.fail(f"manage.py {args[0]} failed:\n{output}")


@dataclass
class UiServer:
    """One daphne process serving the whole app (HTTP and WebSocket)."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _wait_until_serving(server: UiServer) -> None:
    """Poll the login page until it answers (the process imports Django first)."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"daphne exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with opener.open(f"{server.url}/login/", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)  # readiness poll of a starting process, not test synchronisation
    server.stop()
    pytest.fail(f"daphne did not serve within {SERVER_START_TIMEOUT_S}s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def start_ui_server(ui_database_url, simulator, tmp_path_factory):
    """Factory: start a daphne process with extra environment; all are stopped at the end."""
    redis_url = os.environ.get("REDIS_URL", "")
    _require(redis_url.startswith("redis://"), "browser tests need REDIS_URL (real channel layer)")
    servers: list[UiServer] = []
    log_dir = tmp_path_factory.mktemp("daphne")

    def start(**overrides: str) -> UiServer:
        # Bind here and hand the listening socket over: no window in which
        # another process could take the port.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        env = (
            _base_env(ui_database_url)
            | {
                "REDIS_URL": redis_url,
                "SIMULATED_PROVIDER_URL": simulator.url,
                "AI_PROVIDER_TIMEOUT": "10000",
                "RATE_LIMIT_MAX": "1000",
            }
            | overrides
        )
        log_path = log_dir / f"daphne-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "--fd",
                    str(listener.fileno()),
                    "neonpro.asgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=[listener.fileno()],
            )
        listener.close()
        server = UiServer(
            url=f"http://127.0.0.1:{port}", port=port, process=process, log_path=log_path
        )
        servers.append(server)
        _wait_until_serving(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def ui_server(start_ui_server) -> UiServer:
    """The shared server: generous rate limit, simulated provider."""
    return start_ui_server()


@pytest.fixture
def sim(simulator):
    """The simulated provider, with its settings put back after the test."""
    before = simulator.config()
    yield simulator
    simulator.clear_faults()
    simulator.configure(
        **{key: before[key] for key in ("token_delay_ms", "answer_tokens") if key in before}
    )


@pytest.fixture(scope="session")
def chromium():
    _require(
        shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists(),
        f"browser tests need Chromium at {CHROMIUM}",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium, request):
    """A fresh browser context (no cookies) and page; records dialogs and page errors."""
    context = chromium.new_context(
        locale="pt-BR", timezone_id="America/Sao_Paulo", viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(15_000)
    context.add_init_script(_RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    page.dialogs = []
    page.errors = []

    def on_dialog(dialog) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    screenshot_dir = os.environ.get("UI_SCREENSHOT_DIR")
    if screenshot_dir:
        page.screenshot(
            path=str(Path(screenshot_dir) / f"{request.node.name}-end.png"), full_page=True
        )
    context.close()


def screenshot(page, name: str) -> None:
    """Save a screenshot when UI_SCREENSHOT_DIR is set (for looking at the pages)."""
    directory = os.environ.get("UI_SCREENSHOT_DIR")
    if directory:
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)


@pytest.fixture
def screenshots():
    return screenshot
