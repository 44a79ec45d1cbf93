"""manage.py smoke_test --url URL: the post-deployment checklist against a running instance.

The logic lives in `monitoring.smoke` (plain Python, no Django); this command
adds the project's own MONITORING_TOKEN (or MONITORING_TOKEN_FILE) as the
default token when neither the option nor the environment gives one.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring import smoke


class Command(BaseCommand):
    help = (
        "Smoke-test a running instance: health endpoints, database and AI provider "
        "connectivity (light probe only), JWT obtain and refresh with the smoke-test account, "
        "and a sample chat over the WebSocket (a real, small paid completion on production; "
        "--skip-chat leaves it out). Prints one line per check; exits 1 when any check fails."
    )
    # It tests another process over HTTP: no checks of this process' database or models.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        smoke.add_arguments(parser)

    def handle(self, *args, **options) -> None:
        config = smoke.config_from_options(
            options, default_token=getattr(settings, "MONITORING_TOKEN", "") or ""
        )
        report = smoke.run(config)
        self.stdout.write(report.as_json() if options["json"] else report.render())
        if not report.ok:
            raise CommandError(
                f"smoke test failed: {len(report.failed)} of {len(report.results)} checks",
                returncode=1,
            )
