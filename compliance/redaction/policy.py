"""What happens to each type of personal data found in a message (`PII_POLICY`).

- `tag`: replaced by a placeholder such as `[CPF_1]` (the default);
- `surrogate`: replaced by a realistic fake value of the same type, stable in
  the session and turned back into the real value in the answer;
- `block`: the whole message is refused (`pii_blocked`) and nothing leaves.

The setting is a comma-separated list of TYPE:policy pairs, for example
`NOME:surrogate,CPF:block`; `*:policy` changes the default for every type not
listed. An unknown type or policy is a configuration error: the process refuses
to start rather than send data under a policy nobody chose.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

TAG = "tag"
SURROGATE = "surrogate"
BLOCK = "block"
POLICIES = (TAG, SURROGATE, BLOCK)


class PolicyError(ValueError):
    """`PII_POLICY` names an unknown entity type or policy, or is malformed."""


@lru_cache(maxsize=8)
def parse_policy(value: str, entity_types: tuple[str, ...]) -> Mapping[str, str]:
    """The policy of every entity type from a `PII_POLICY` value (read-only mapping)."""
    explicit: dict[str, str] = {}
    default = TAG
    for item in (part.strip() for part in (value or "").split(",")):
        if not item:
            continue
        entity, sep, policy = (piece.strip() for piece in item.partition(":"))
        entity, policy = entity.upper(), policy.lower()
        if not sep or not entity or not policy:
            raise PolicyError(f"PII_POLICY entry {item!r} is not TYPE:policy.")
        if policy not in POLICIES:
            raise PolicyError(
                f"PII_POLICY: unknown policy {policy!r} for {entity}; use one of "
                f"{', '.join(POLICIES)}.")
        if entity == "*":
            default = policy
        elif entity not in entity_types:
            raise PolicyError(
                f"PII_POLICY: unknown entity type {entity!r}; known types: "
                f"{', '.join(entity_types)}.")
        elif entity in explicit and explicit[entity] != policy:
            raise PolicyError(f"PII_POLICY gives {entity} two policies.")
        else:
            explicit[entity] = policy
    return MappingProxyType({entity: explicit.get(entity, default) for entity in entity_types})


def active_policy() -> Mapping[str, str]:
    """The policy of every entity type under the current settings (`PII_POLICY`)."""
    from django.conf import settings

    from .engine import ENTITY_TYPES

    return parse_policy(getattr(settings, "PII_POLICY", ""), ENTITY_TYPES)
