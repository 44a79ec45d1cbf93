"""Admin building blocks any app's admin may use without loading compliance's admin pages
(importing `compliance.admin` would register its models early and reorder the admin)."""

from __future__ import annotations

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Nobody adds, edits or deletes these rows in the admin, superusers included."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
