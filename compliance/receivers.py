"""What compliance records when the layer below announces it (signal receivers).

neonpro sits below compliance and cannot call the audit trail; it sends a
signal, and the receivers here, connected from ComplianceConfig.ready(), record
the event in the same call.
"""

from __future__ import annotations

from django.dispatch import receiver

from compliance import audit
from neonpro.login_protection import LOCKED_OUT_EVENT, sign_in_locked_out


@receiver(sign_in_locked_out, dispatch_uid="compliance-sign-in-locked-out")
def record_sign_in_lockout(sender, *, subject_user_id: int | None, metadata: dict,
                           **kwargs) -> None:
    """A login_locked_out event; when it cannot be written the sign-in fails, as before."""
    audit.record_event(event_type=LOCKED_OUT_EVENT, subject_user_id=subject_user_id,
                       metadata=metadata)
