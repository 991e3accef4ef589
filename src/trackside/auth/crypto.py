"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) over values written to the store or files.

The key comes from the `secrets_key` setting (`TRACKSIDE_SECRETS_KEY`, a Fernet key) or is
generated once into `{data_dir}/secrets.key` (mode 0600). Encrypted values are marked with a
prefix so that data written before encryption was enabled still reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from trackside.errors import InvalidInput
from trackside.files import read_or_create_private

KEY_FILENAME = "secrets.key"
KEY_ENV_VAR = "TRACKSIDE_SECRETS_KEY"
PREFIX = "fernet:"


class SecretBox:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise InvalidInput(
                "setting secrets_key: not a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet as F; print(F.generate_key())'"
            ) from None

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, stored: str) -> str:
        """The plain value; values without the prefix were stored before encryption and pass as they are."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise InvalidInput(
                "a stored secret can't be decrypted with the current secrets key (was the key changed?)"
            ) from None


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


def load_secret_box(data_dir: Path, key: str | None = None) -> SecretBox:
    chosen = (
        key
        or os.environ.get(KEY_ENV_VAR)
        or read_or_create_private(data_dir / KEY_FILENAME, lambda: Fernet.generate_key().decode())
    )
    return SecretBox(chosen)
