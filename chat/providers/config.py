"""Provider configuration, read from Django settings on every call.

Reading settings each time (cheap attribute lookups) keeps overrides in tests
and reloaded settings effective without restarting the process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from django.conf import settings

logger = logging.getLogger(__name__)

PROVIDER_NAMES = ("openai", "anthropic")
# Without a key (simulated provider, or a self-hosted OpenAI-compatible server
# that ignores auth) the SDKs still need some credential string.
_PLACEHOLDER_KEY = "simulated"
_DEFAULT_IDLE_TIMEOUT_MS = 10_000
_DEFAULT_STREAM_TIMEOUT_MS = 180_000


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Everything one attempt against one provider needs to know."""

    name: str
    api_key: str
    base_url: str | None
    model: str
    max_tokens: int
    timeout_s: float  # connect + response + first token (AI_PROVIDER_TIMEOUT)
    idle_timeout_s: float  # longest silence between chunks once streaming
    stream_timeout_s: float  # whole attempt, however steadily it streams


def provider_config(name: str) -> ProviderConfig | None:
    """The configuration of provider `name`, or None when it is not configured.

    A provider is configured when it has an API key or a base URL (the
    simulated provider, or a self-hosted OpenAI-compatible server).
    """
    if name == "openai":
        key, base_url, model = (
            settings.OPENAI_API_KEY,
            settings.OPENAI_BASE_URL,
            settings.OPENAI_MODEL,
        )
    elif name == "anthropic":
        key, base_url, model = (
            settings.ANTHROPIC_API_KEY,
            settings.ANTHROPIC_BASE_URL,
            settings.ANTHROPIC_MODEL,
        )
    else:
        return None
    if not key and not base_url:
        return None
    timeout_ms = max(1, int(settings.AI_PROVIDER_TIMEOUT))
    idle_ms = getattr(settings, "AI_PROVIDER_IDLE_TIMEOUT", None) or min(
        timeout_ms, _DEFAULT_IDLE_TIMEOUT_MS
    )
    stream_ms = getattr(settings, "AI_PROVIDER_STREAM_TIMEOUT", None) or _DEFAULT_STREAM_TIMEOUT_MS
    return ProviderConfig(
        name=name,
        api_key=key or _PLACEHOLDER_KEY,
        base_url=base_url or None,
        model=model,
        max_tokens=int(settings.AI_MAX_TOKENS),
        timeout_s=timeout_ms / 1000,
        idle_timeout_s=int(idle_ms) / 1000,
        stream_timeout_s=max(int(stream_ms), timeout_ms) / 1000,
    )


def provider_order() -> list[str]:
    """Configured providers to try, primary first, without duplicates."""
    order: list[str] = []
    for name in (settings.AI_PRIMARY_PROVIDER, settings.AI_SECONDARY_PROVIDER):
        name = (name or "").strip().lower()
        if name and name not in order and name in PROVIDER_NAMES:
            order.append(name)
    return order


def price_per_million(model: str) -> tuple[Decimal, Decimal]:
    """USD per million (input, output) tokens for `model`; zero when it is not priced."""
    return _parse_price_table(settings.AI_PRICE_TABLE).get(model, (Decimal(0), Decimal(0)))


@lru_cache(maxsize=8)
def _parse_price_table(table: str) -> dict[str, tuple[Decimal, Decimal]]:
    prices: dict[str, tuple[Decimal, Decimal]] = {}
    for entry in filter(None, (part.strip() for part in table.split(","))):
        model, sep, pair = entry.partition("=")
        price_in, sep2, price_out = pair.partition(":")
        try:
            if not (sep and sep2 and model.strip()):
                raise ArithmeticError
            prices[model.strip()] = (Decimal(price_in.strip()), Decimal(price_out.strip()))
        except ArithmeticError:
            # Cached per table value, so this is said once, not per answer.
            logger.warning(
                "AI_PRICE_TABLE entry ignored: expected model=input:output",
                extra={"event": "price_table_invalid", "metadata": {"entry": entry[:80]}},
            )
    return prices


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """What `input_tokens` in and `output_tokens` out cost on `model`, in USD."""
    price_in, price_out = price_per_million(model)
    if not price_in and not price_out:
        return Decimal(0)
    return (input_tokens * price_in + output_tokens * price_out) / Decimal(1_000_000)
