"""Field encryption for secrets at rest (provider credentials).

Fernet (AES-128-CBC + HMAC-SHA256) keyed from OPENLINE_FIELD_KEY, or derived from SECRET_KEY
with HKDF so the embedded profile needs no extra configuration.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models


@functools.cache
def _fernet() -> Fernet:
    if settings.OPENLINE_FIELD_KEY:
        return Fernet(settings.OPENLINE_FIELD_KEY.encode())
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"openline-field-encryption"
    ).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt field: wrong OPENLINE_FIELD_KEY/SECRET_KEY?") from exc


if TYPE_CHECKING:
    # django-stubs types a field by the values it takes and gives back; Django's own Field
    # class is not subscriptable at run time.
    _JSONTextField = models.TextField[dict[str, Any] | None, dict[str, Any]]
else:
    _JSONTextField = models.TextField


class EncryptedJSONField(_JSONTextField):
    """A JSON object stored encrypted. Not queryable, by design."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        return json.loads(decrypt(value))

    def get_prep_value(self, value: Any) -> Any:
        return encrypt(json.dumps(value or {}, sort_keys=True))
