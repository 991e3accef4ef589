"""Secrets at rest: Fernet boxes whose output holds no plain value, and keys kept 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from trackside.auth.crypto import SecretBox, is_encrypted, load_secret_box
from trackside.errors import InvalidInput


def test_encrypted_values_hold_no_plain_text_and_decrypt_back() -> None:
    box = SecretBox(Fernet.generate_key().decode())
    stored = box.encrypt("hunter2-s3cret")
    assert is_encrypted(stored) and "hunter2" not in stored
    assert box.decrypt(stored) == "hunter2-s3cret"


def test_values_written_before_encryption_still_read() -> None:
    assert SecretBox(Fernet.generate_key().decode()).decrypt('{"a": 1}') == '{"a": 1}'


def test_another_key_cannot_decrypt_and_says_so() -> None:
    stored = SecretBox(Fernet.generate_key().decode()).encrypt("x")
    with pytest.raises(InvalidInput) as caught:
        SecretBox(Fernet.generate_key().decode()).decrypt(stored)
    assert "secrets key" in caught.value.message


def test_a_bad_key_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(InvalidInput) as caught:
        SecretBox("not a key")
    assert "Fernet" in caught.value.message


def test_the_generated_key_is_kept_0600_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKSIDE_SECRETS_KEY", raising=False)
    first = load_secret_box(tmp_path)
    key_file = tmp_path / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_secret_box(tmp_path).decrypt(first.encrypt("v")) == "v"
