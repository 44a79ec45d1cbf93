"""Prometheus exposition: which registry a scrape reads, and the families computed at scrape.

Which registry
--------------
- ``PROMETHEUS_MULTIPROC_DIR`` set (production: each daphne process, each
  Celery prefork child): every process writes its counters, histograms and
  gauges to files in that directory, and each scrape builds a fresh
  ``CollectorRegistry`` with ``MultiProcessCollector``, which sums counters and
  histograms over the processes (dead ones included, so totals never go back)
  and combines gauges by their ``multiprocess_mode``. The directory must exist
  and be empty when the first process starts (wipe it on container start) and
  belong to one container: each container is its own scrape target.
- otherwise: the process's default registry (``prometheus_client.REGISTRY``),
  where django-prometheus and ``monitoring.metrics`` register, plus the
  process and platform collectors.

Either way `AIChatCollector` is added once. It computes, at each scrape, the
families that describe shared state rather than one process's work, so every
process reports the same value (aggregate them with ``max()``, never ``sum()``):

- ``ai_chat_sessions_total{status}``: sessions by status (active, closed,
  expired; an active session past its idle timeout counts as expired);
- ``ai_chat_session_utilization``: active sessions, percent of
  ``AI_SESSION_CAPACITY``;
- ``ai_chat_circuit_state{provider}``: 0 closed, 1 half-open, 2 open, as
  shared through the cache (absent while the cache is unreachable);
- ``ai_chat_provider_quota_remaining{provider,kind}``: tokens / requests left
  according to the provider's last rate-limit headers;
- ``ai_chat_process_memory_usage_percent``: working set of the container
  against its cgroup memory limit when there is one (what the kernel kills
  on), else this process's resident memory against ``MemTotal``;
- ``ai_chat_db_up``: 1 when ``SELECT 1`` succeeds within the bound, else 0;
- ``ai_chat_security_incident_notification_seconds_left``: seconds to the
  nearest ANPD notification deadline of an open incident not yet notified
  (negative once past; absent when there is none).

Database and cache reads are bounded (`SCRAPE_TIMEOUT_S`); a failing
dependency removes its families from the scrape instead of failing it, so
Prometheus still sees the process up.

Celery workers are scraped on their own port (``CELERY_METRICS_PORT``,
default 9808, ``0`` disables; ``CELERY_METRICS_ADDRESS``, default all
interfaces of the worker's private network): `install` starts that exporter
in the worker's main process, which reads the prefork children's files when
``PROMETHEUS_MULTIPROC_DIR`` is set.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chat.models import ChatSession
from compliance.incidents import incidents_next_deadline
from monitoring import health

logger = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 3.0
_CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}
_QUOTA_KINDS = (("tokens", "tokens_remaining"), ("requests", "requests_remaining"))
# cgroup v1 reports "no limit" as a huge number rather than "max".
_NO_LIMIT = 1 << 60


def multiprocess_dir() -> str | None:
    """The multiprocess directory when multiprocess mode is on, else None."""
    return (os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            or os.environ.get("prometheus_multiproc_dir") or None)


# --- Figures read at scrape time ----------------------------------------------------------


def _session_figures() -> dict[str, Any]:
    health.ping_database()  # raises when the database is down: ai_chat_db_up 0
    counts = dict.fromkeys(ChatSession.Status.values, 0)
    for status, count in ChatSession.objects.values_list("status").annotate(
            count=Count("id")).order_by():
        counts[status] = counts.get(status, 0) + count
    idle_expired = ChatSession.objects.filter(status=ChatSession.Status.ACTIVE,
                                              expires_at__lte=timezone.now()).count()
    counts[ChatSession.Status.ACTIVE] -= idle_expired
    counts[ChatSession.Status.EXPIRED] += idle_expired
    return counts


def _incident_figures() -> float | None:
    """Seconds to the nearest ANPD notification deadline of an open, not yet notified
    incident that may cause relevant risk (negative once past); None when there is none."""
    deadline = incidents_next_deadline()
    return None if deadline is None else (deadline - timezone.now()).total_seconds()


def _provider_figures() -> dict[str, dict[str, Any]]:
    reporting = health.provider_reporting()
    return {name: reporting.provider_status(name) for name in reporting.configured_providers()}


def memory_usage_percent() -> float | None:
    """Memory in use, percent of the cgroup limit if any, else of MemTotal (None off Linux)."""
    total = _mem_total()
    cgroup = _cgroup_memory()
    if cgroup is not None:
        usage, limit = cgroup
        if limit and (total is None or limit < total):
            return round(usage / limit * 100, 2)
    rss = _process_rss()
    if rss is None or not total:
        return None
    return round(rss / total * 100, 2)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _mem_total() -> int | None:
    text = _read(Path("/proc/meminfo")) or ""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _process_rss() -> int | None:
    text = _read(Path("/proc/self/statm"))
    if not text:
        return None
    return int(text.split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _stat_value(text: str | None, name: str) -> int:
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return 0


def _cgroup_memory() -> tuple[int, int | None] | None:
    """(working set, limit or None) of this process's cgroup, v2 or v1; None if unknown."""
    root = Path("/sys/fs/cgroup")
    relative = "/"
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        if line.startswith("0::"):
            relative = line[3:].strip() or "/"
    for directory in (root / relative.lstrip("/"), root):
        current = _read(directory / "memory.current")
        if current is None:
            continue
        maximum = (_read(directory / "memory.max") or "max").strip()
        # The working set, as the kernel and the kubelet see it: page cache
        # that can be dropped does not count towards an out-of-memory kill.
        usage = int(current) - _stat_value(_read(directory / "memory.stat"), "inactive_file")
        return max(usage, 0), None if maximum == "max" else int(maximum)
    v1 = root / "memory"
    usage_v1 = _read(v1 / "memory.usage_in_bytes")
    if usage_v1 is None:
        return None
    limit = int((_read(v1 / "memory.limit_in_bytes") or str(_NO_LIMIT)).strip())
    usage = int(usage_v1) - _stat_value(_read(v1 / "memory.stat"), "total_inactive_file")
    return max(usage, 0), None if limit >= _NO_LIMIT else limit


# --- The collector ------------------------------------------------------------------------


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "sessions": GaugeMetricFamily(
            "ai_chat_sessions_total", "Chat sessions by status (shared state: use max()).",
            labels=["status"]),
        "utilization": GaugeMetricFamily(
            "ai_chat_session_utilization",
            "Active sessions as a percent of AI_SESSION_CAPACITY (shared state: use max())."),
        "circuit": GaugeMetricFamily(
            "ai_chat_circuit_state",
            "Provider circuit breaker shared across processes: 0 closed, 1 half-open, 2 open.",
            labels=["provider"]),
        "quota": GaugeMetricFamily(
            "ai_chat_provider_quota_remaining",
            "Provider quota left per its last rate-limit headers, by kind (tokens, requests).",
            labels=["provider", "kind"]),
        "memory": GaugeMetricFamily(
            "ai_chat_process_memory_usage_percent",
            "Memory in use, percent of the container's cgroup limit, else of host memory."),
        "db_up": GaugeMetricFamily(
            "ai_chat_db_up", "1 when the database answered SELECT 1 at scrape time, else 0."),
        "incident_deadline": GaugeMetricFamily(
            "ai_chat_security_incident_notification_seconds_left",
            "Seconds to the nearest ANPD notification deadline of an open security incident "
            "not yet notified (negative: overdue; absent: none). Shared state: use min()."),
    }


class AIChatCollector(Collector):
    """The `ai_chat_*` families computed from the database and the cache at each scrape."""

    def describe(self) -> Iterator[Metric]:
        # Names only: registering must not query the database.
        return iter(_families().values())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        results = health.run_bounded(
            {"scrape:sessions": (_session_figures, health.db_fingerprint()),
             "scrape:incidents": (_incident_figures, health.db_fingerprint()),
             "scrape:providers": (_provider_figures, health.cache_fingerprint())},
            SCRAPE_TIMEOUT_S,
        )
        sessions = results["scrape:sessions"]
        if isinstance(sessions, health.CheckFailed):
            families["db_up"].add_metric([], 0)
        else:
            families["db_up"].add_metric([], 1)
            for status, count in sorted(sessions.items()):
                families["sessions"].add_metric([status], count)
            capacity = int(settings.AI_SESSION_CAPACITY)
            if capacity > 0:
                families["utilization"].add_metric(
                    [], round(sessions.get("active", 0) / capacity * 100, 2))
        deadline = results["scrape:incidents"]
        if deadline is not None and not isinstance(deadline, health.CheckFailed):
            families["incident_deadline"].add_metric([], round(deadline))
        providers = results["scrape:providers"]
        if not isinstance(providers, health.CheckFailed):
            for name, status in providers.items():
                state = (status.get("circuit") or {}).get("state")
                if state in _CIRCUIT_VALUES:
                    families["circuit"].add_metric([name], _CIRCUIT_VALUES[state])
                quota = status.get("quota") or {}
                for kind, key in _QUOTA_KINDS:
                    if quota.get(key) is not None:
                        families["quota"].add_metric([name, kind], quota[key])
        memory = memory_usage_percent()
        if memory is not None:
            families["memory"].add_metric([], memory)
        yield from families.values()


_collector = AIChatCollector()
_install_lock = threading.Lock()
_installed = False


def scrape_registry() -> CollectorRegistry:
    """The registry to expose for this scrape (see the module docstring)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_collector)
        return registry
    install()
    return REGISTRY


def install() -> None:
    """Register the collector and the process hooks once per process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        if multiprocess_dir():
            pid = os.getpid()
            # Gauges in live* modes must stop counting this process once it is gone.
            atexit.register(multiprocess.mark_process_dead, pid)
        else:
            REGISTRY.register(_collector)
        _connect_worker_signals()


# --- Celery worker exporter ---------------------------------------------------------------


def _worker_registry() -> CollectorRegistry:
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_collector)
        return registry
    return REGISTRY


def _start_worker_exporter(**_: Any) -> None:
    from prometheus_client import start_http_server

    if not getattr(settings, "MONITORING_ENABLED", True):
        return
    port = int(os.environ.get("CELERY_METRICS_PORT", "9808") or 0)
    if not port:
        return
    address = os.environ.get("CELERY_METRICS_ADDRESS", "0.0.0.0")  # noqa: S104 (private network)  # nosec B104
    try:
        start_http_server(port, addr=address, registry=_worker_registry())
    except OSError:
        # Another worker in this container already exports on this port.
        logger.warning("worker metrics exporter not started", exc_info=True, extra={
            "event": "worker_metrics_exporter_failed", "metadata": {"port": port}})
        return
    logger.info("worker metrics exporter listening", extra={
        "event": "worker_metrics_exporter_started", "metadata": {"port": port}})


def _mark_child_dead(**_: Any) -> None:
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())


def _connect_worker_signals() -> None:
    from celery import signals

    # worker_init: the worker's main process, before the pool forks its children.
    signals.worker_init.connect(_start_worker_exporter, weak=False,
                                dispatch_uid="monitoring.worker_exporter")
    signals.worker_process_shutdown.connect(_mark_child_dead, weak=False,
                                            dispatch_uid="monitoring.worker_child_dead")
