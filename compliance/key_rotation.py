"""Re-encrypting stored values after `ENCRYPTION_KEY` gains a new first key.

Rotation has two steps. Operators prepend the new key to `ENCRYPTION_KEY` and
restart: new values are encrypted with it at once and old ones still decrypt.
Then `manage.py rotate_encryption_keys` re-encrypts every stored value that an
older key encrypted, after which the old key can be dropped from the list.

The fields are found by type (every `EncryptedTextField`/`EncryptedJSONField` of
every installed model), so an app that adds an encrypted field is covered
without being named here. Values are read and written as stored tokens with
plain SQL: the model fields would decrypt on the way in and encrypt on the way
out, and the ORM would also run any save signals. Each batch is its own
transaction, and each row is written only if it still holds the token that was
read (a compare-and-set), so chat traffic may go on while it runs and a run
that stops half-way can simply be started again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.db import connection, models, transaction

from compliance.encryption import (
    EncryptedJSONField,
    EncryptedTextField,
    encrypted_with_current_key,
    reencrypt_text,
)

DEFAULT_BATCH_SIZE = 500


@dataclass
class FieldRotation:
    """What one run did to one encrypted column."""

    label: str
    scanned: int = 0
    reencrypted: int = 0
    undecryptable: int = 0


@dataclass
class RotationReport:
    fields: list[FieldRotation] = field(default_factory=list)
    dry_run: bool = False

    @property
    def reencrypted(self) -> int:
        return sum(f.reencrypted for f in self.fields)

    @property
    def undecryptable(self) -> int:
        return sum(f.undecryptable for f in self.fields)

    def audit_metadata(self) -> dict:
        """Counts per column: codes and numbers only, as the trail requires."""
        return {
            "dry_run": self.dry_run,
            "reencrypted": self.reencrypted,
            "undecryptable": self.undecryptable,
            "fields": {f.label: {"scanned": f.scanned, "reencrypted": f.reencrypted,
                                 "undecryptable": f.undecryptable} for f in self.fields},
        }


def encrypted_columns() -> Iterator[tuple[type[models.Model], models.Field]]:
    """Every concrete encrypted field of every installed, managed model."""
    for model in apps.get_models():
        if not model._meta.managed or model._meta.proxy:
            continue
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, (EncryptedTextField, EncryptedJSONField)):
                yield model, model_field


@dataclass(frozen=True)
class _Statements:
    """The SQL of one encrypted column. Identifiers come from the model registry and
    are quoted; every value is a bound parameter."""

    first_batch: str
    next_batch: str
    update: str

    @classmethod
    def of(cls, model: type[models.Model], column: models.Field) -> _Statements:
        quote = connection.ops.quote_name
        table, pk, value = (quote(model._meta.db_table), quote(model._meta.pk.column),
                            quote(column.column))
        select = f"SELECT {pk}, {value} FROM {table} WHERE {value} <> ''"  # noqa: S608  # nosec B608
        return cls(
            first_batch=f"{select} ORDER BY {pk} LIMIT %s",
            next_batch=f"{select} AND {pk} > %s ORDER BY {pk} LIMIT %s",
            update=(f"UPDATE {table} SET {value} = %s "  # noqa: S608  # nosec B608
                    f"WHERE {pk} = %s AND {value} = %s"),
        )


def _batches(statements: _Statements, batch_size: int) -> Iterator[list[tuple[object, str]]]:
    """(primary key, stored token) of non-empty values, in key order, a batch at a time."""
    last_key = None
    while True:
        with connection.cursor() as cursor:
            if last_key is None:
                cursor.execute(statements.first_batch, [batch_size])
            else:
                cursor.execute(statements.next_batch, [last_key, batch_size])
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last_key = rows[-1][0]


def _rotate_column(model: type[models.Model], column: models.Field, *, batch_size: int,
                   dry_run: bool) -> FieldRotation:
    result = FieldRotation(label=f"{model._meta.label}.{column.name}")
    statements = _Statements.of(model, column)
    for rows in _batches(statements, batch_size):
        changes = []
        for key, token in rows:
            result.scanned += 1
            if encrypted_with_current_key(token):
                continue
            try:
                changes.append((reencrypt_text(token), key, token))
            except InvalidToken:
                # No configured key opens it: a key was dropped too early. Leave the
                # value as it is (it may still be recovered with that key) and report it.
                result.undecryptable += 1
        if changes and not dry_run:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(statements.update, changes)
        result.reencrypted += len(changes)
    return result


def rotate_encryption_keys(*, batch_size: int = DEFAULT_BATCH_SIZE,
                           dry_run: bool = False) -> RotationReport:
    """Re-encrypt with the first key every stored value an older key encrypted."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport(dry_run=dry_run)
    for model, column in encrypted_columns():
        report.fields.append(
            _rotate_column(model, column, batch_size=batch_size, dry_run=dry_run))
    return report
