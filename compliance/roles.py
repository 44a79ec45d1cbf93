"""Staff roles for the admin: the groups and what each may see or do.

Compliance officers read the audit trail, consents and sessions (with message
text, on the session page, which is itself audited), handle data-subject
requests, publish terms versions and place sessions under legal hold. They
never edit or delete audit data: the admin refuses that to everyone.
Operations staff read clinics, memberships, sessions and provider attempts —
metadata only, never message text.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

COMPLIANCE_OFFICERS = "Compliance Officers"
OPERATIONS = "Operations"

# Codename of the permission to read decrypted message text and session titles
# (declared on chat.ChatMessage; named here by string, compliance imports nothing of chat).
VIEW_MESSAGE_CONTENT = "view_message_content"
VIEW_MESSAGE_CONTENT_PERM = f"chat.{VIEW_MESSAGE_CONTENT}"

GROUP_PERMISSIONS: dict[str, list[str]] = {
    COMPLIANCE_OFFICERS: [
        "compliance.view_auditevent",
        "auditlog.view_logentry",
        "compliance.view_consentrecord",
        "compliance.view_termsversion",
        "compliance.add_termsversion",
        "compliance.view_datasubjectrequest",
        "compliance.add_datasubjectrequest",
        "compliance.change_datasubjectrequest",
        "compliance.view_securityincident",
        "compliance.add_securityincident",
        "compliance.change_securityincident",
        "compliance.view_incidentnotification",
        "compliance.add_incidentnotification",
        "clinics.view_clinic",
        "clinics.view_clinicmembership",
        "chat.view_chatsession",
        "chat.change_chatsession",  # legal hold only; every other field is read-only
        "chat.view_chatmessage",
        "chat.view_messagefeedback",
        VIEW_MESSAGE_CONTENT_PERM,
        "chat.view_providerattempt",
        "auth.view_user",
    ],
    OPERATIONS: [
        "clinics.view_clinic",
        "clinics.view_clinicmembership",
        "chat.view_chatsession",
        "chat.view_chatmessage",
        "chat.view_providerattempt",
    ],
}


def _permission(dotted: str, using: str) -> Permission:
    app_label, codename = dotted.split(".", 1)
    return Permission.objects.using(using).get(content_type__app_label=app_label,
                                               codename=codename)


def roles_ensure_groups(*, using: str = "default") -> dict[str, Group]:
    """Create or update the staff groups with exactly their permissions (idempotent).

    Every permission must exist already: Django creates them after migrating
    (`view_message_content` is declared on chat.ChatMessage), before this runs.
    """
    groups = {}
    for name, dotted_names in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.set([_permission(dotted, using) for dotted in dotted_names])
        groups[name] = group
    return groups


def is_compliance_officer(user) -> bool:
    """May read message text in the admin (officers and superusers)."""
    return user.is_active and user.is_staff and user.has_perm(VIEW_MESSAGE_CONTENT_PERM)
