from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_groups(sender, using: str = "default", **kwargs) -> None:
    # Runs after every migrate (and test-database flush), once the permissions exist.
    from compliance.roles import roles_ensure_groups

    roles_ensure_groups(using=using)


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance (LGPD)"

    def ready(self) -> None:
        from compliance import checks  # noqa: F401  (registers the system checks)
        from compliance.audit import register_auditlog

        register_auditlog()
        post_migrate.connect(_ensure_groups, sender=self, dispatch_uid="compliance-groups")
