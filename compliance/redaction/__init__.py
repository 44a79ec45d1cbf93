"""PII redaction for Brazilian Portuguese clinical text (LGPD).

The only code in the project that imports scrubadub. The chat pipeline calls
`redact` (under the `PII_POLICY` of `active_policy`) before anything leaves for an
AI provider, `reidentify` /
`StreamReidentifier` on what comes back, and the logging filter calls
`redact_for_log`.
"""

from __future__ import annotations

from . import lexicon
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


def warm_up() -> None:
    """Load the name lexicons and build the detectors now, not on the first message.

    They take about 0.2 s and 19 MiB once per process; a web process calls this at
    start-up so that no clinician's first message waits for them.
    """
    redact("Paciente Maria Aparecida da Silva, CPF 529.982.247-25, tel. (11) 98765-4321.")
    lexicon.frequent_given_name("Maria")  # its own table, read on first use

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
    "warm_up",
]
