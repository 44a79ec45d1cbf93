"""Encryption at rest for message text and PII mappings.

`ENCRYPTION_KEY` holds one or more comma-separated secrets: the first encrypts,
all decrypt, so a key can be rotated by prepending the new one (and running
`manage.py rotate_encryption_keys` to re-encrypt old rows; see
`compliance.key_rotation`). Each secret is
stretched with HKDF into a Fernet key, so operators may use any long random
string.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key."""


@functools.lru_cache(maxsize=8)
def _fernet_for(secret: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"neonpro-at-rest-v1", info=b"fernet"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


@functools.lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet_for(k) for k in keys])


def _cipher() -> MultiFernet:
    return _multi_fernet(tuple(settings.ENCRYPTION_KEYS))


def encrypt_text(value: str) -> str:
    return _cipher().encrypt(value.encode()).decode("ascii")


def decrypt_text(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise DecryptionError("stored value cannot be decrypted with the configured keys") from exc


def reencrypt_text(token: str) -> str:
    """Re-encrypt with the first key (after a rotation)."""
    return _cipher().rotate(token.encode("ascii")).decode("ascii")


def encrypted_with_current_key(token: str) -> bool:
    """Whether `token` was encrypted with the first (current) key."""
    try:
        _fernet_for(settings.ENCRYPTION_KEYS[0]).decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; Python code sees plain text."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt_text(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_text(value)


class EncryptedJSONField(models.TextField):
    """A JSON document stored as a Fernet token (e.g. a session's PII mapping)."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return {}
        return json.loads(decrypt_text(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value else {}
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt_text(json.dumps(value, ensure_ascii=False, sort_keys=True))

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj))
