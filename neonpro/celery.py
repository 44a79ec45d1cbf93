"""Celery application, configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neonpro.settings")

app = Celery("neonpro")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # 03:15 São Paulo time: the quietest hour for the clinics.
    "purge-expired-chat-data": {
        "task": "compliance.tasks.purge_expired_data",
        "schedule": crontab(hour=3, minute=15),
    },
    # Every 5 minutes: a signed checkpoint of the audit chain outside the database,
    # so deleting the newest events or emptying the table shows within minutes.
    "anchor-audit-chain": {
        "task": "compliance.tasks.anchor_audit_chain",
        "schedule": 300.0,
    },
    # 03:45 São Paulo time, after the purge: expired refresh tokens are deleted.
    "flush-expired-refresh-tokens": {
        "task": "chat.tasks.flush_expired_refresh_tokens",
        "schedule": crontab(hour=3, minute=45),
    },
    # Every minute: idle sessions stop counting against capacity promptly.
    "expire-idle-sessions": {
        "task": "chat.tasks.expire_idle_sessions",
        "schedule": 60.0,
    },
}
