from __future__ import annotations

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate


def _ensure_groups(sender, using: str = "default", apps=global_apps, **kwargs) -> None:
    # Runs after every migrate (and test-database flush), once the permissions exist.
    # Imported here: roles imports the auth models, not importable while apps load.
    from compliance.roles import GROUP_PERMISSIONS, roles_ensure_groups

    # After a partial migrate (a rollback), an app the groups' permissions belong to
    # may be missing from the database; the next migrate to head sets the groups.
    labels = {dotted.split(".", 1)[0] for names in GROUP_PERMISSIONS.values()
              for dotted in names}
    if all(label in apps.app_configs for label in labels):
        roles_ensure_groups(using=using)


def _check_pii_policy() -> None:
    # At start-up, in every process: a typo in PII_POLICY must stop the deployment,
    # not send data under a policy nobody chose. (Imported here, like every
    # import of this module's hooks: apps.py is loaded while the app registry fills.)
    from compliance.redaction import PolicyError, active_policy

    try:
        active_policy()
    except PolicyError as exc:
        raise ImproperlyConfigured(str(exc)) from None


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance (LGPD)"

    def ready(self) -> None:
        # Registers the system checks and connects the signal receivers.
        from compliance import checks, receivers  # noqa: F401
        from compliance.audit import register_auditlog

        register_auditlog()
        _check_pii_policy()
        post_migrate.connect(_ensure_groups, sender=self, dispatch_uid="compliance-groups")
