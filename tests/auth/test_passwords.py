"""Passwords: argon2 hashes that verify only the right password, and strength rules that name the rule."""

from __future__ import annotations

import pytest

from trackside.auth.passwords import check_password_strength, hash_password, verify_password
from trackside.errors import InvalidInput


def test_a_hash_verifies_the_password_and_nothing_else() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "correct horse batterY")
    assert not verify_password(hashed, "")


def test_two_hashes_of_one_password_differ_by_salt() -> None:
    assert hash_password("same password 1") != hash_password("same password 1")


def test_garbage_hashes_never_verify() -> None:
    assert not verify_password("", "x")
    assert not verify_password("pbkdf2_sha256$1$x$y", "x")


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short1", "too short"),
        ("1234567890123", "numeric"),
        ("password123", "too common"),
        ("alice-secret-2024", "similar to the username"),
    ],
)
def test_weak_passwords_are_refused_naming_the_rule(password: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_password_strength(password, "alice@example.com")
    assert rule in caught.value.message
    assert password not in caught.value.message


def test_a_strong_password_passes() -> None:
    check_password_strength("tangerine-Orbit-88", "alice@example.com")
