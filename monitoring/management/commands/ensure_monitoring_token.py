"""manage.py ensure_monitoring_token --file PATH: a monitoring token for local runs.

Health details and /api/metrics need `Authorization: Bearer $MONITORING_TOKEN` or
a staff session, also on a development machine, where the health report names
the database, the providers and the traffic. The run command calls this on
every start: the first run writes a random token to PATH (readable by its owner
only) and prints it with the demo passwords; later runs reuse it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


def monitoring_token_ensure(*, path: Path) -> tuple[str, bool]:
    """The token stored at `path`, created (mode 0600) if missing; and whether it was."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if not token:
            raise CommandError(f"{path.name} is empty; delete it to get a new token.") from None
        return token, False
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token, True


class Command(BaseCommand):
    help = "Create the monitoring token file of a local run if missing (printed once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--file", required=True, type=Path,
                            help="where the token is kept (MONITORING_TOKEN_FILE)")

    def handle(self, *args, file: Path, **options) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        token, created = monitoring_token_ensure(path=file)
        if created:
            self.stdout.write(f"  monitoring token: {token}  (health details and "
                              f"/api/metrics: Authorization: Bearer <token>; kept in {file})")
        else:
            self.stdout.write(f"  monitoring token: in {file}")
