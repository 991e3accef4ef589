"""The platform's keys in an archive: only when the operator asks (`--include-keys`), and said loudly.

`auth.key` signs every token and `secrets.key` encrypts every stored secret (token values, job
secrets). An archive with them is as sensitive as the platform itself; one without them restores
a platform whose old tokens are refused and whose old secrets can't be read, until the steps that
`recovery_steps` prints (docs/operations.md, in Trackside's commands) are followed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trackside.auth.bootstrap import PASSWORD_FILENAME
from trackside.auth.crypto import KEY_ENV_VAR
from trackside.auth.crypto import KEY_FILENAME as SECRETS_KEY_FILENAME
from trackside.auth.keys import KEY_FILENAME as AUTH_KEY_FILENAME
from trackside.auth.keys import load_auth_key
from trackside.backup.archive import ArchiveWriter
from trackside.config import Settings
from trackside.files import read_or_create_private, write_private

PREFIX = "keys"
WARNING = (
    "WARNING: this archive holds the platform's keys (auth.key signs every token, secrets.key decrypts "
    "every stored secret): anyone who reads it can act as any user and read every job secret. "
    "Keep it as safe as the platform itself."
)


def effective_secrets_key(settings: Settings) -> str:
    """The secrets key in force, as `trackside.auth.crypto.load_secret_box` chooses it."""
    return (
        settings.secrets_key
        or os.environ.get(KEY_ENV_VAR)
        or read_or_create_private(settings.data_dir / SECRETS_KEY_FILENAME, lambda: _no_key())
    )


def _no_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def add_keys(writer: ArchiveWriter, settings: Settings) -> None:
    writer.add_bytes(f"{PREFIX}/{AUTH_KEY_FILENAME}", load_auth_key(settings).encode())
    writer.add_bytes(f"{PREFIX}/{SECRETS_KEY_FILENAME}", effective_secrets_key(settings).encode())
    password = settings.data_dir / PASSWORD_FILENAME
    if password.is_file():
        writer.add_file(f"{PREFIX}/{PASSWORD_FILENAME}", password)


@dataclass
class KeyOutcome:
    restored: bool
    # Settings that override the restored key files (TRACKSIDE_AUTH_KEY, ...): their keys are in force.
    overridden: list[str]


def restore_keys(staged: Path, settings: Settings) -> KeyOutcome:
    """Write the archive's keys into the data dir (mode 0600); which settings override them."""
    keys_dir = staged / PREFIX
    if not (keys_dir / AUTH_KEY_FILENAME).is_file():
        return KeyOutcome(restored=False, overridden=[])
    overridden = []
    for name in (AUTH_KEY_FILENAME, SECRETS_KEY_FILENAME, PASSWORD_FILENAME):
        source = keys_dir / name
        if source.is_file():
            write_private(
                settings.data_dir / name, source.read_text().strip() + ("\n" if name == PASSWORD_FILENAME else "")
            )
    if settings.auth_key and settings.auth_key != (keys_dir / AUTH_KEY_FILENAME).read_text().strip():
        overridden.append("auth_key (TRACKSIDE_AUTH_KEY)")
    configured = settings.secrets_key or os.environ.get(KEY_ENV_VAR)
    if configured and configured != (keys_dir / SECRETS_KEY_FILENAME).read_text().strip():
        overridden.append("secrets_key (TRACKSIDE_SECRETS_KEY)")
    return KeyOutcome(restored=True, overridden=overridden)


def recovery_steps(options: str, api: str) -> str:
    """What to do when the restored platform's keys are not the archive's.

    `options`: the settings flags the restore was given; `api`: the lifecycle API's URL.
    """
    return "\n".join(
        [
            "Tokens made under the old auth key are refused, and secrets encrypted under the old secrets key",
            "can't be read, until you do this (docs/operations.md, 'Restoring without the keys'):",
            f"  1. trackside up {options}".rstrip(),
            f"  2. trackside admin generate-auth admin {options}".rstrip() + "   (a full-access token: keep it safe)",
            "  3. with it in the X-Racetrack-Auth header, re-sign the stored tokens:",
            f"       curl -X POST -H 'X-Racetrack-Auth: TOKEN' {api}/auth/token/user/all/regenerate",
            f"       curl -X POST -H 'X-Racetrack-Auth: TOKEN' {api}/auth/token/esc/regenerate",
            f"       curl -X POST -H 'X-Racetrack-Auth: TOKEN' {api}/auth/token/job_family/regenerate",
            "     users then log in again for their new token; ESC owners get theirs from staff",
            f"     (GET {api}/auth/token/esc/ESC_ID, or the dashboard's ESC page)",
            "  4. redeploy every job (trackside deploy ... --force, with its secret files): the jobs' secrets",
            "     and tokens were encrypted under the old secrets key",
        ]
    )
