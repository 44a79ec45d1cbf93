"""Celery tasks of the compliance room: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from compliance import audit, retention


@shared_task(name="compliance.tasks.purge_expired_data", time_limit=3600, soft_time_limit=3300)
def purge_expired_data() -> dict:
    """Daily retention purge (scheduled in neonpro/celery.py): chat data, then old audit events.

    Safe to run twice or concurrently; an interrupted run leaves whole batches
    done or undone, and the next run carries on.
    """
    with audit.acting_as(None):  # the change log records the system as the actor
        result = retention.purge_expired_data()
        audit_events = retention.audit_purge_expired()
    # The purge removed rows on purpose: anchor the chain as it now stands.
    audit.audit_chain_anchor(trigger="purge")
    return {**result.as_dict(), "audit_events": audit_events}


@shared_task(name="compliance.tasks.anchor_audit_chain", time_limit=300, soft_time_limit=240)
def anchor_audit_chain() -> int:
    """Sign a checkpoint of the audit chain outside the database (scheduled in
    neonpro/celery.py); returns the anchored event id. A refusal raises, is counted
    and logged, and the next run tries again."""
    return audit.audit_chain_anchor(trigger="schedule")["last_id"]
