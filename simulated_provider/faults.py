"""Fault injection for the simulated provider.

A fault belongs to one provider (``openai`` or ``anthropic``) and, unless told
otherwise, to that provider's completion endpoint only, so the free health probe
(``GET /v1/models``) does not use up a fault meant for a completion. Faults are
taken first in, first out; ``times`` says how many requests a fault applies to
(``None``: until cleared).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

PROVIDERS = ("openai", "anthropic")
COMPLETION_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
ALL_PATHS = "*"

_INT_FIELDS = (
    "delay_before_ms",
    "stall_after_chunks",
    "stall_ms",
    "drop_after_chunks",
    "malformed_after_chunks",
    "error_after_chunks",
    "times",
)
_STR_FIELDS = ("type", "code", "message")
_BOOL_FIELDS = ("no_terminator", "no_usage")
_KNOWN_FIELDS = {
    "provider",
    "paths",
    "status",
    "retry_after",
    *_INT_FIELDS,
    *_STR_FIELDS,
    *_BOOL_FIELDS,
}


@dataclass
class Fault:
    """One injected misbehaviour; see the package documentation for each field."""

    id: int
    provider: str
    paths: list[str]
    status: int | None = None
    type: str | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    delay_before_ms: int = 0
    stall_after_chunks: int | None = None
    stall_ms: int = 0
    drop_after_chunks: int | None = None
    malformed_after_chunks: int | None = None
    error_after_chunks: int | None = None
    no_terminator: bool = False
    no_usage: bool = False
    times: int | None = None

    def applies_to(self, path: str) -> bool:
        return ALL_PATHS in self.paths or path in self.paths

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_fault(data: Any, *, fault_id: int) -> Fault:
    """Validate a fault description from the control API; ``ValueError`` says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("a fault is a JSON object")
    unknown = sorted(set(data) - _KNOWN_FIELDS)
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
    provider = data.get("provider")
    if provider not in PROVIDERS:
        raise ValueError("provider must be 'openai' or 'anthropic'")
    fields: dict[str, Any] = {"id": fault_id, "provider": provider}
    fields["paths"] = _parse_paths(data.get("paths"), provider)
    for name in _INT_FIELDS:
        if data.get(name) is not None:
            fields[name] = _non_negative_int(data[name], name)
    for name in _STR_FIELDS:
        if data.get(name) is not None:
            if not isinstance(data[name], str):
                raise ValueError(f"{name} must be a string")
            fields[name] = data[name]
    for name in _BOOL_FIELDS:
        if name in data:
            if not isinstance(data[name], bool):
                raise ValueError(f"{name} must be true or false")
            fields[name] = data[name]
    if data.get("status") is not None:
        status = data["status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error code (400-599)")
        fields["status"] = status
    if data.get("retry_after") is not None:
        retry_after = data["retry_after"]
        if not isinstance(retry_after, int | float) or retry_after < 0:
            raise ValueError("retry_after must be a non-negative number of seconds")
        fields["retry_after"] = float(retry_after)
    fault = Fault(**fields)
    _check_combination(fault)
    return fault


def _parse_paths(paths: Any, provider: str) -> list[str]:
    if paths is None:
        return [COMPLETION_PATHS[provider]]
    if paths == ALL_PATHS:
        return [ALL_PATHS]
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise ValueError("paths must be '*', a path or a non-empty list of paths")
    return list(paths)


def _non_negative_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _check_combination(fault: Fault) -> None:
    if fault.times == 0:
        raise ValueError("times must be at least 1 (omit it for 'until cleared')")
    if fault.status is not None and fault.error_after_chunks is not None:
        # The status is the HTTP status of the response; a mid-stream error comes
        # after a 200 has already been sent, so the two cannot both hold.
        raise ValueError("status and error_after_chunks exclude each other")
    if fault.no_usage and fault.provider != "openai":
        # Anthropic always reports usage; only OpenAI-compatible servers omit it.
        raise ValueError("no_usage applies to the openai provider only")
    if fault.stall_after_chunks is not None and not fault.stall_ms:
        raise ValueError("stall_after_chunks needs stall_ms")


class FaultBook:
    """The active faults of a running simulator, per provider, first in first out."""

    def __init__(self) -> None:
        self._faults: dict[str, deque[Fault]] = {provider: deque() for provider in PROVIDERS}
        self._next_id = 1

    def add(self, data: Any) -> Fault:
        fault = parse_fault(data, fault_id=self._next_id)
        self._next_id += 1
        self._faults[fault.provider].append(fault)
        return fault

    def take(self, provider: str, path: str) -> Fault | None:
        """The fault for this request, if any, counting it as used once."""
        queue = self._faults.get(provider)
        if not queue:
            return None
        for fault in queue:
            if fault.applies_to(path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times == 0:
                        queue.remove(fault)
                return fault
        return None

    def clear(self, provider: str | None = None) -> None:
        for name, queue in self._faults.items():
            if provider is None or provider == name:
                queue.clear()

    def as_list(self) -> list[dict[str, Any]]:
        return [fault.as_dict() for queue in self._faults.values() for fault in queue]
