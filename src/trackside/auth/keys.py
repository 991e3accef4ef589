"""The auth key that signs every token (JWT HS256).

From the `auth_key` setting (`TRACKSIDE_AUTH_KEY`) when set, so several lifecycle replicas share
one; otherwise generated on first use and kept in `{data_dir}/auth.key` (mode 0600), so tokens
survive restarts. Changing it invalidates every token: see docs/auth.md for the rotation steps.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from trackside.config import Settings
from trackside.files import read_or_create_private

KEY_FILENAME = "auth.key"
MIN_KEY_LENGTH = 16


def auth_key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILENAME


def load_auth_key(settings: Settings) -> str:
    if settings.auth_key:
        if len(settings.auth_key) < MIN_KEY_LENGTH:
            from trackside.errors import InvalidInput

            raise InvalidInput(f"setting auth_key: at least {MIN_KEY_LENGTH} characters are needed")
        return settings.auth_key
    return read_or_create_private(auth_key_path(settings.data_dir), lambda: secrets.token_urlsafe(48))
