"""Signed checkpoints of the audit chain, kept outside the database.

The hash chain shows an edited or removed row in the middle, but whoever can
bypass the append-only triggers (a database superuser) can also delete the
newest events or empty the table, and what is left still verifies. An anchor
records how far the chain went (last event id, its hash, the event count, the
time) and is signed with HMAC-SHA256 under `AUDIT_ANCHOR_KEY`, a key the
database never holds: the database cannot vouch for itself, the anchors can.

Anchors go to an append-only directory (`AUDIT_ANCHOR_DIR`, its own volume):
one JSON Lines file per UTC day, opened with O_APPEND and never rewritten, one
line per anchor written with a single write and fsync'd. The same record goes
to the JSON log for the log pipeline, a second copy outside this host.

This module knows the format, the keys and the directory, not the database;
`compliance.audit` builds anchors from the chain and checks the chain against
them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

FORMAT = "neonpro-audit-anchor/1"
FILE_PREFIX = "audit-anchors-"
FILE_SUFFIX = ".jsonl"
_SIGNED_FIELDS = ("format", "last_id", "last_hash", "event_count", "anchored_at", "key_id")


class AnchorError(Exception):
    """Anchors cannot be written or checked (no key, no writable directory, a refusal)."""


@dataclass(frozen=True)
class Anchor:
    """One anchor whose signature holds, and where it was read from ("file:line")."""

    last_id: int
    last_hash: str
    event_count: int
    anchored_at: datetime
    source: str


@dataclass(frozen=True)
class AnchorReadProblem:
    """A line of the anchor directory that is not a valid, correctly signed anchor."""

    source: str
    reason: str


def _keys() -> list[bytes]:
    keys = [key.encode() for key in settings.AUDIT_ANCHOR_KEYS]
    if not keys:
        raise AnchorError(
            "AUDIT_ANCHOR_KEY is not set: audit anchors can be neither written nor checked")
    return keys


def key_id(key: bytes) -> str:
    """A short public name for a key, so a rotated key's anchors find their key."""
    return hashlib.sha256(b"neonpro-audit-anchor-key-id:" + key).hexdigest()[:16]


def _signature(key: bytes, record: dict[str, Any]) -> str:
    body = json.dumps({name: record[name] for name in _SIGNED_FIELDS},
                      sort_keys=True, separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def signed_record(*, last_id: int, last_hash: str, event_count: int,
                  anchored_at: datetime) -> dict[str, Any]:
    """An anchor record signed with the first (current) AUDIT_ANCHOR_KEY."""
    key = _keys()[0]
    record: dict[str, Any] = {
        "format": FORMAT, "last_id": last_id, "last_hash": last_hash,
        "event_count": event_count,
        "anchored_at": anchored_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "key_id": key_id(key),
    }
    record["signature"] = _signature(key, record)
    return record


def anchor_dir() -> Path:
    return Path(settings.AUDIT_ANCHOR_DIR)


def append_record(record: dict[str, Any]) -> Path:
    """Append `record` as one line to today's anchor file; never rewrites a byte."""
    directory = anchor_dir()
    day = record["anchored_at"][:10]
    path = directory / f"{FILE_PREFIX}{day}{FILE_SUFFIX}"
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    try:
        directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        # O_APPEND: every write lands at the end, so two writers (beat and a purge)
        # cannot overwrite each other; one write per line keeps lines whole.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AnchorError(f"audit anchor could not be written to {directory}: "
                          f"{exc.strerror or type(exc).__name__}") from exc
    return path


def anchor_files() -> list[Path]:
    """The anchor files, oldest first (file names sort by day)."""
    directory = anchor_dir()
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"))


def _parse(line: str, keys: dict[str, bytes], source: str) -> Anchor | AnchorReadProblem:
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            return AnchorReadProblem(source, "not an audit anchor record")
        signed = {name: record[name] for name in _SIGNED_FIELDS}
        signature = record["signature"]
        anchor = Anchor(
            last_id=int(signed["last_id"]), last_hash=str(signed["last_hash"]),
            event_count=int(signed["event_count"]),
            anchored_at=datetime.fromisoformat(signed["anchored_at"]), source=source,
        )
    except (ValueError, KeyError, TypeError):
        return AnchorReadProblem(source, "not a valid audit anchor record")
    key = keys.get(str(signed["key_id"]))
    if key is None:
        return AnchorReadProblem(
            source, f"signed with a key that is not in AUDIT_ANCHOR_KEY (key id "
                    f"{str(signed['key_id'])[:16]})")
    if not isinstance(signature, str) or not hmac.compare_digest(
            _signature(key, signed), signature):
        return AnchorReadProblem(source, "signature does not match: forged or altered anchor")
    return anchor


def read_anchors() -> Iterator[Anchor | AnchorReadProblem]:
    """Every line of the anchor directory, oldest file first, checked against the keys.

    Streams: a year of anchors every 5 minutes is about 105,000 lines.
    """
    keys = {key_id(key): key for key in _keys()}
    for path in anchor_files():
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    yield _parse(line, keys, f"{path.name}:{number}")


def newest_anchor() -> Anchor | None:
    """The most recent correctly signed anchor (by anchor time), or None."""
    newest: Anchor | None = None
    keys = {key_id(key): key for key in _keys()}
    for path in reversed(anchor_files()):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                parsed = _parse(line, keys, f"{path.name}:{number}") if line.strip() else None
                if isinstance(parsed, Anchor) and (
                        newest is None or parsed.anchored_at >= newest.anchored_at):
                    newest = parsed
        if newest is not None:  # files are per day: an older file holds older anchors
            return newest
    return newest
