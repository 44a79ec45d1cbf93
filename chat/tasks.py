"""Celery tasks of the chat: thin wrappers around the pipeline's services."""

from __future__ import annotations

from celery import shared_task

from chat import token_families
from chat.pipeline import sessions


@shared_task(name="chat.tasks.expire_idle_sessions", time_limit=120, soft_time_limit=100)
def expire_idle_sessions() -> int:
    """Mark idle sessions as expired so they stop counting against capacity."""
    return sessions.sessions_expire_idle()


@shared_task(name="chat.tasks.flush_expired_refresh_tokens", time_limit=600, soft_time_limit=540)
def flush_expired_refresh_tokens() -> int:
    """Delete refresh tokens past their expiry (and their blacklist rows)."""
    return token_families.refresh_tokens_flush_expired()
