"""Check an audit-trail export offline: the file, its signed manifest, every event's hash.

Pure Python with no Django import, so that an auditor can run it anywhere:

    python -m compliance.export_check audit-trail.csv manifest.json   # key in AUDIT_EXPORT_KEY
    python manage.py verify_audit_export audit-trail.csv manifest.json  # key from settings

What it proves: the manifest was signed with the export key (HMAC-SHA256), the
file is the one the manifest describes (SHA-256, count, first and last hash),
every event's hash is the SHA-256 of its canonical form (so no field was
edited), and where consecutive events are both in the file, each one's
prev_hash is the hash of the one before (the chain holds). An export for one
clinic skips other clinics' events, so links are checked only across
consecutive ids.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

MANIFEST_FORMAT = "neonpro.audit-export.v1"
CSV_COLUMNS = ["id", "created_at", "event_type", "actor_id", "subject_user_id", "clinic_id",
               "session_id", "metadata", "prev_hash", "hash"]


def canonical_event_bytes(event: dict[str, Any]) -> bytes:
    """The bytes an event's hash covers (the same form as compliance.audit.canonical_bytes)."""
    document = {key: event[key] for key in CSV_COLUMNS if key != "hash"}
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def manifest_signature(manifest: dict[str, Any], key: str) -> str:
    """HMAC-SHA256 (hex) of the manifest's canonical JSON, without its signature."""
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    payload = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _optional_int(value: str) -> int | None:
    return int(value) if value not in ("", None) else None


def parse_events(content: bytes, file_format: str) -> list[dict[str, Any]]:
    """The events of an export file, with fields typed as in their canonical form."""
    if file_format == "json":
        return json.loads(content.decode())["events"]
    rows = csv.DictReader(io.StringIO(content.decode()))
    return [{
        "id": int(row["id"]), "created_at": row["created_at"], "event_type": row["event_type"],
        "actor_id": _optional_int(row["actor_id"]),
        "subject_user_id": _optional_int(row["subject_user_id"]),
        "clinic_id": _optional_int(row["clinic_id"]),
        "session_id": row["session_id"] or None, "metadata": json.loads(row["metadata"]),
        "prev_hash": row["prev_hash"], "hash": row["hash"],
    } for row in rows]


@dataclass
class ExportCheck:
    problems: list[str] = field(default_factory=list)
    events: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_export(*, content: bytes, manifest: dict[str, Any], key: str) -> ExportCheck:
    """Every check of the module docstring; the problems found, in English (for auditors)."""
    result = ExportCheck()
    if manifest.get("format") != MANIFEST_FORMAT:
        result.problems.append(f"unknown manifest format {manifest.get('format')!r}")
        return result
    signature = (manifest.get("signature") or {}).get("value", "")
    if not hmac.compare_digest(signature, manifest_signature(manifest, key)):
        result.problems.append("the manifest's signature does not match (wrong key or edited)")
    if hashlib.sha256(content).hexdigest() != manifest.get("sha256"):
        result.problems.append("the file's SHA-256 differs from the manifest's")
    try:
        events = parse_events(content, manifest.get("file_format", "csv"))
    except (ValueError, KeyError) as error:
        result.problems.append(f"the file cannot be read: {error}")
        return result
    result.events = len(events)
    if len(events) != manifest.get("count"):
        result.problems.append(f"{len(events)} events in the file, {manifest.get('count')} in "
                               "the manifest")
    if events and (events[0]["hash"] != manifest.get("first_hash")
                   or events[-1]["hash"] != manifest.get("last_hash")):
        result.problems.append("first or last hash differs from the manifest's")
    previous = None
    for event in events:
        if hashlib.sha256(canonical_event_bytes(event)).hexdigest() != event["hash"]:
            result.problems.append(f"event {event['id']}: content does not match its hash")
        if previous is not None and event["id"] == previous["id"] + 1 \
                and event["prev_hash"] != previous["hash"]:
            result.problems.append(f"event {event['id']}: prev_hash does not match event "
                                   f"{previous['id']}")
        previous = event
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m compliance.export_check FILE MANIFEST "
              "(key in AUDIT_EXPORT_KEY)", file=sys.stderr)
        return 2
    key = os.environ.get("AUDIT_EXPORT_KEY", "")
    if not key:
        print("AUDIT_EXPORT_KEY is not set", file=sys.stderr)
        return 2
    with open(args[0], "rb") as data, open(args[1], encoding="utf-8") as manifest:
        result = check_export(content=data.read(), manifest=json.load(manifest), key=key)
    for problem in result.problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if result.ok:
        print(f"export OK: {result.events} events, signature and hashes verified")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
