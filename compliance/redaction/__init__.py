"""PII redaction for Brazilian Portuguese clinical text (LGPD).

The only code in the project that imports scrubadub. The chat pipeline calls
`redact` before anything leaves for an AI provider, `reidentify` /
`StreamReidentifier` on what comes back, and the logging filter calls
`redact_for_log`.
"""

from __future__ import annotations

from .engine import (
    ENTITY_TYPES,
    Entity,
    RedactionError,
    RedactionResult,
    StreamReidentifier,
    detect_entities,
    redact,
    redact_for_log,
    reidentify,
)

__all__ = [
    "ENTITY_TYPES",
    "Entity",
    "RedactionError",
    "RedactionResult",
    "StreamReidentifier",
    "detect_entities",
    "redact",
    "redact_for_log",
    "reidentify",
]
