"""Content policy applied to a message before it goes to a provider.

Two layers:

- Local rules, always on: `AI_CONTENT_FILTER_RULES`, a list of regular
  expressions (or one string with one rule per line). A rule may be named,
  `name=regex`; the name (lowercase letters, digits, `_`) becomes the block
  reason, otherwise the reason is `rule_<n>`. Matching ignores case. When the
  setting is absent or None, `DEFAULT_RULES` (prompt injection) apply; an empty
  list or string means no local rules. An invalid regex fails loudly.
- OpenAI's moderation endpoint, when `AI_CONTENT_FILTER_MODERATION` is true
  (model `AI_CONTENT_FILTER_MODERATION_MODEL`, default omni-moderation-latest).
  If the endpoint cannot be reached the message is let through and a warning
  logged: moderation is an extra net, and failing closed would take the chat
  down whenever OpenAI is down, defeating failover.

Pass the redacted text: the moderation call sends it to OpenAI.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from monitoring.metrics import CONTENT_FILTERED

from . import openai_provider
from .base import ProviderError
from .config import provider_config

logger = logging.getLogger(__name__)

DEFAULT_RULES: tuple[str, ...] = (
    r"prompt_injection=\b(ignore|ignorar|ignore-se|desconsidere|desconsiderar|esque[cç]a)\s+"
    r"(todas\s+|all\s+)?(as\s+|the\s+|suas\s+|your\s+)?(instru[cç][oõ]es|instructions|regras|rules)"
    r"\s+(anteriores|pr[eé]vias|previous|prior|above|acima)",
    r"system_prompt_probe=\b(mostre|revele|repita|exiba|show|reveal|repeat|print)\s+"
    r"(o\s+|seu\s+|your\s+|the\s+)?(prompt\s+do\s+sistema|system\s+prompt)",
)
_NAMED_RULE = re.compile(r"^([a-z][a-z0-9_]{0,39})=(.+)$", re.DOTALL)
_DEFAULT_MODERATION_MODEL = "omni-moderation-latest"
_MODERATION_TIMEOUT_S = 5.0


class ContentBlocked(Exception):
    """The message breaks the content policy; `reason` is a rule name or "moderation"."""

    code = "content_filtered"

    def __init__(self, reason: str) -> None:
        super().__init__(f"content blocked ({reason})")
        self.reason = reason


def _rules_setting() -> tuple[str, ...]:
    rules = getattr(settings, "AI_CONTENT_FILTER_RULES", None)
    if rules is None:
        return DEFAULT_RULES
    if isinstance(rules, str):
        rules = rules.splitlines()
    return tuple(rule.strip() for rule in rules if rule and rule.strip())


@lru_cache(maxsize=8)
def compile_rules(rules: Iterable[str]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Compile `name=regex` / `regex` rules; ImproperlyConfigured names the bad one."""
    compiled = []
    for index, rule in enumerate(rules, start=1):
        named = _NAMED_RULE.match(rule)
        name, pattern = (named.group(1), named.group(2)) if named else (f"rule_{index}", rule)
        try:
            compiled.append((name, re.compile(pattern, re.IGNORECASE)))
        except re.error as exc:
            raise ImproperlyConfigured(
                f"AI_CONTENT_FILTER_RULES rule {index} ({name}) is not a valid regex: {exc}"
            ) from None
    return tuple(compiled)


def local_violation(text: str) -> str | None:
    """The name of the first local rule `text` breaks, or None."""
    for name, pattern in compile_rules(_rules_setting()):
        if pattern.search(text):
            return name
    return None


def moderation_enabled() -> bool:
    """Whether messages also go to the moderation endpoint (a network call)."""
    return bool(getattr(settings, "AI_CONTENT_FILTER_MODERATION", False))


def check_local_rules(text: str) -> None:
    """Raise ContentBlocked when `text` breaks a local rule (no network; any thread)."""
    _raise_if_blocked(local_violation(text))


async def check_content(text: str) -> None:
    """Raise ContentBlocked when `text` breaks the content policy; count it in CONTENT_FILTERED."""
    reason = local_violation(text)
    if reason is None and moderation_enabled():
        reason = await _moderation_violation(text)
    _raise_if_blocked(reason)


def _raise_if_blocked(reason: str | None) -> None:
    if reason is not None:
        CONTENT_FILTERED.inc()
        logger.info(
            "message blocked by the content filter",
            extra={"event": "content_filtered", "metadata": {"reason": reason}},
        )
        raise ContentBlocked(reason)


async def _moderation_violation(text: str) -> str | None:
    cfg = provider_config(openai_provider.NAME)
    if cfg is None:
        logger.warning(
            "content moderation is on but the openai provider is not configured",
            extra={"event": "content_moderation_skipped"},
        )
        return None
    model = getattr(settings, "AI_CONTENT_FILTER_MODERATION_MODEL", "") or (
        _DEFAULT_MODERATION_MODEL
    )
    try:
        flagged = await openai_provider.moderate(
            cfg, text, model=model, timeout_s=min(cfg.timeout_s, _MODERATION_TIMEOUT_S)
        )
    except ProviderError as error:
        logger.warning(
            "content moderation unavailable; message checked by local rules only",
            extra={
                "event": "content_moderation_failed",
                "metadata": {"code": error.code, "status": error.status},
            },
        )
        return None
    return "moderation" if flagged else None
