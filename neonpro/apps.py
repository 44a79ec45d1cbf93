from __future__ import annotations

from django.apps import AppConfig


class NeonProConfig(AppConfig):
    """Project-wide plumbing that must be wired in every process."""

    name = "neonpro"
    verbose_name = "NeonPro"

    def ready(self) -> None:
        # Importing the module connects the sign-in failure and success receivers
        # (brute-force lock-out): every process that can authenticate needs them.
        from neonpro import login_protection, tracing

        login_protection.hide_refresh_tokens_from_admin()
        # The trace id travels from the publisher into Celery tasks (web, worker, beat).
        tracing.connect_celery_signals()
