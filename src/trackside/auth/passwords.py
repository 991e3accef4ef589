"""Password hashing (argon2id) and the rules a new password must pass.

argon2-cffi's defaults (RFC 9106 low-memory profile) cost ~50 ms per check, which is also what
makes guessing slow; `ratelimit` adds the per-account and per-address slowdown on top.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from trackside.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 hashes anything, but a megabyte password is an attack, not a password

# The most common passwords of leaked lists that pass the length rule (Django refuses these too).
COMMON_PASSWORDS = frozenset(
    [
        "password",
        "password1",
        "password12",
        "password123",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "qwerty123",
        "qwerty12",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "1qaz2wsx",
        "zaq12wsx",
        "iloveyou",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "welcome",
        "welcome1",
        "abc12345",
        "abcd1234",
        "admin123",
        "administrator",
        "letmein1",
        "trustno1",
        "superman",
        "batman123",
        "starwars",
        "dragon12",
        "monkey123",
        "master123",
        "computer",
        "internet",
        "whatever",
        "changeme",
        "11111111",
        "00000000",
        "12341234",
        "87654321",
        "asdfghjkl",
        "asdf1234",
        "qazwsxedc",
        "secret123",
        "racetrack",
        "trackside",
    ]
)

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if not password_hash or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_password_strength(password: str, username: str = "") -> None:
    """Refuse a weak password, naming the rule it failed (never echoing the password)."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"password: too short; use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"password: too long; use at most {MAX_LENGTH} characters")
    if password.isdigit():
        raise InvalidInput("password: entirely numeric; mix in letters or symbols")
    if password.lower() in COMMON_PASSWORDS:
        raise InvalidInput("password: too common; choose one that is not on lists of leaked passwords")
    if username:
        local = username.split("@")[0].lower()
        if len(local) >= 3 and local in password.lower():
            raise InvalidInput("password: too similar to the username")
