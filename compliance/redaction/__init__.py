"""PII redaction for Brazilian Portuguese clinical text (LGPD).

The only code in the project that imports scrubadub. The chat pipeline calls
`redact` (under the `PII_POLICY` of `active_policy`) before anything leaves for an
AI provider, `reidentify` /
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
from .policy import BLOCK, POLICIES, SURROGATE, TAG, PolicyError, active_policy, parse_policy

__all__ = [
    "BLOCK",
    "POLICIES",
    "SURROGATE",
    "TAG",
    "PolicyError",
    "active_policy",
    "parse_policy",
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
