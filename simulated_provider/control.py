"""Driving a simulated provider from Python: start it in a thread, steer it over HTTP.

The helpers talk to the control API over HTTP (standard library only), so the
same calls work for a simulator in this process and for one started with
``python -m simulated_provider`` in another.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import fields
from types import TracebackType
from typing import Any

from .server import SimulatorConfig, start_server

# The simulator listens on loopback; a proxy from the environment must not get
# in between.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SimulatorControlError(RuntimeError):
    """The control API refused a request (for instance an unknown fault field)."""


class SimulatedProviderControl:
    """Client of a running simulator's control API (``/_sim/``)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    @property
    def openai_base_url(self) -> str:
        """What to pass as ``base_url`` to ``openai.AsyncOpenAI``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """What to pass as ``base_url`` to ``anthropic.AsyncAnthropic``."""
        return self.url

    def set_fault(self, provider: str, **fault: Any) -> dict[str, Any]:
        """Inject a fault for ``provider`` (``openai``/``anthropic``); returns it with its id."""
        return self._call("POST", "/_sim/faults", {"provider": provider, **fault})["fault"]

    def faults(self) -> list[dict[str, Any]]:
        """The faults still active."""
        return self._call("GET", "/_sim/faults")["faults"]

    def clear_faults(self, provider: str | None = None) -> None:
        """Remove the faults of one provider, or all of them."""
        query = f"?provider={urllib.parse.quote(provider)}" if provider else ""
        self._call("DELETE", f"/_sim/faults{query}")

    def requests(self, *, provider: str | None = None, path: str | None = None) -> list[dict]:
        """The recorded requests, oldest first, optionally only one provider's or path's."""
        params = {key: value for key, value in (("provider", provider), ("path", path)) if value}
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return self._call("GET", f"/_sim/requests{query}")["requests"]

    def clear_requests(self) -> None:
        """Forget the recorded requests and zero the counts of ``stats()``."""
        self._call("DELETE", "/_sim/requests")

    def configure(self, *, provider: str | None = None, **settings: Any) -> dict[str, Any]:
        """Change settings (``token_delay_ms``, ``answer_tokens``, rate limits, ...)."""
        body = {**settings, **({"provider": provider} if provider else {})}
        return self._call("POST", "/_sim/config", body)

    def config(self) -> dict[str, Any]:
        """The current settings."""
        return self._call("GET", "/_sim/config")

    def reset(self, *, config: bool = False) -> None:
        """Clear faults, recordings and rate-limit counters; ``config=True`` also
        restores the settings the simulator started with."""
        self._call("POST", "/_sim/reset", {"config": config})

    def stats(self) -> dict[str, Any]:
        """Requests received since the recordings were last cleared, in total and per
        provider, even those no longer recorded: ``{"received", "received_by_provider",
        "recorded"}``."""
        return self._call("GET", "/_sim/stats")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the simulator's own
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise SimulatorControlError(f"{method} {path}: {exc.code} {detail}") from None


class SimulatedProviderHandle(SimulatedProviderControl):
    """A simulator running on its own event loop in a background thread."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
    ) -> None:
        url_host = f"[{host}]" if ":" in host else host
        super().__init__(f"http://{url_host}:{port}")
        self.host = host
        self.port = port
        self._loop = loop
        self._thread = thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for its thread (open streams get a short grace period)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> SimulatedProviderHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


_SETTING_NAMES = {f.name for f in fields(SimulatorConfig)}


def start_in_thread(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token_delay_ms: float = 0.0,
    **settings: Any,
) -> SimulatedProviderHandle:
    """Start a simulator in a daemon thread and return once it accepts connections.

    ``port=0`` picks a free port (see ``handle.port``). Other keyword arguments
    are ``SimulatorConfig`` fields (``answer_tokens``, ``bad_key``, ...).
    """
    unknown = sorted(set(settings) - _SETTING_NAMES)
    if unknown:
        raise TypeError(f"unknown simulator settings: {', '.join(unknown)}")
    config = SimulatorConfig(token_delay_ms=token_delay_ms, **settings)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            runner, bound_port = loop.run_until_complete(
                start_server(host=host, port=port, config=config, shutdown_timeout=0.5)
            )
        except BaseException as exc:  # handed to the caller, who raises it
            outcome["error"] = exc
            ready.set()
            loop.close()
            return
        outcome["port"] = bound_port
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            _cancel_leftovers(loop)
            loop.close()

    thread = threading.Thread(target=run, name="simulated-ai-provider", daemon=True)
    thread.start()
    ready.wait()
    if "error" in outcome:
        raise outcome["error"]
    return SimulatedProviderHandle(host=host, port=outcome["port"], loop=loop, thread=thread)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    # Handlers still sleeping (a stall fault) would otherwise be destroyed while
    # pending when the loop closes; cancel them and let them unwind.
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
