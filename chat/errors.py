"""The chat's own error type (codes, statuses and frames: neonpro.errors)."""

from __future__ import annotations

from neonpro.errors import NeonProError


class ChatError(NeonProError):
    """A request the chat refuses, with a stable `code` clients can act on."""
