from __future__ import annotations

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate


def _ensure_groups(sender, using: str = "default", **kwargs) -> None:
    # Runs after every migrate (and test-database flush), once the permissions exist.
    from compliance.roles import roles_ensure_groups

    roles_ensure_groups(using=using)


def _check_pii_policy() -> None:
    # At start-up, in every process: a typo in PII_POLICY must stop the deployment,
    # not send data under a policy nobody chose.
    from compliance.redaction import PolicyError, active_policy

    try:
        active_policy()
    except PolicyError as exc:
        raise ImproperlyConfigured(str(exc)) from None


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance (LGPD)"

    def ready(self) -> None:
        from compliance import checks  # noqa: F401  (registers the system checks)
        from compliance.audit import register_auditlog

        register_auditlog()
        _check_pii_policy()
        post_migrate.connect(_ensure_groups, sender=self, dispatch_uid="compliance-groups")
