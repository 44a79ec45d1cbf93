"""Where the apps above compliance plug in the personal data they hold.

Compliance sits below the chat: it imports nothing from it. Yet its duties
reach into chat data: a data subject's export and erasure, the retention
purge, closing sessions when consent is revoked. So an app that holds personal
data registers handlers here from its `AppConfig.ready()`, the way apps
register models with the admin, and compliance calls whatever is registered
without naming the app.

Handlers run inside compliance's transaction (the export, the erasure and the
consent revocation are each one transaction with their audit event): they
must not commit on their own, and an exception rolls the whole action back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import models


@dataclass(frozen=True)
class SubjectExport:
    """One app's part of a subject's export: document sections and their counts.

    `sections` go into the export document under their keys (e.g. "sessions");
    `counts` (e.g. {"sessions": 3, "messages": 12}) go into the data_exported
    audit event, which records numbers only.
    """

    sections: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SubjectDataHandler:
    """How one app exports, erases and lists a data subject's records.

    - `export(*, user) -> SubjectExport`: everything the app holds about `user`.
    - `erase(*, user) -> dict[str, int]`: wipe the content `user` put into the
      app (keeping what a legal hold protects); returns counts for the audit event.
      Called first in the erasure's transaction, so the app can lock its rows
      before compliance takes the audit chain's lock.
    - `consent_revoked(*, user, purpose) -> int`: consent for `purpose` was just
      revoked; stop what needed it (e.g. close sessions); returns how many things
      were stopped.
    - `own_records(user) -> list[(model, pks)]`: the subject's own records, whose
      change-log entries the export lists and the erasure scrubs.
    """

    export: Callable[..., SubjectExport]
    erase: Callable[..., dict[str, int]]
    consent_revoked: Callable[..., int]
    own_records: Callable[[Any], list[tuple[type[models.Model], Iterable[Any]]]]


# `purge(*, cutoff, batch_size, dry_run) -> compliance.retention.PurgeResult`: delete (or,
# with dry_run, count) the app's data whose last activity is older than `cutoff`, in
# batches of `batch_size`, each batch with its retention_purge audit event.
RetentionPurger = Callable[..., Any]

_subject_data: list[SubjectDataHandler] = []
_retention_purgers: list[RetentionPurger] = []


def register_subject_data(handler: SubjectDataHandler) -> None:
    """Register an app's subject-data handler (idempotent: ready() may run twice in tests)."""
    if handler not in _subject_data:
        _subject_data.append(handler)


def subject_data_handlers() -> tuple[SubjectDataHandler, ...]:
    return tuple(_subject_data)


def register_retention_purger(purger: RetentionPurger) -> None:
    """Register an app's retention purge (idempotent)."""
    if purger not in _retention_purgers:
        _retention_purgers.append(purger)


def retention_purgers() -> tuple[RetentionPurger, ...]:
    return tuple(_retention_purgers)
