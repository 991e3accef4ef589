"""Auth tokens: JWT HS256 signed with the auth key, Racetrack's payload shape.

Payload `{seed, subject, subject_type, scopes}`: `seed` makes every token unique (so one subject
can hold several, each revocable), `subject` is a username, ESC id, family name or service name.
A valid signature is not enough for user, ESC and family tokens: `subjects.resolve_token` also
requires their stored, active, unexpired row. Only `internal` tokens are not stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

import jwt

from trackside.errors import Unauthorized

ALGORITHM = "HS256"


class SubjectType(StrEnum):
    USER = "user"
    ESC = "esc"
    JOB_FAMILY = "job_family"
    INTERNAL = "internal"


@dataclass(frozen=True)
class TokenPayload:
    subject: str
    subject_type: SubjectType
    seed: str
    scopes: list[str] | None = field(default=None)


def encode_token(key: str, subject: str, subject_type: SubjectType, scopes: list[str] | None = None) -> str:
    payload: dict[str, object] = {"seed": str(uuid.uuid4()), "subject": subject, "subject_type": subject_type.value}
    if scopes is not None:
        payload["scopes"] = list(scopes)
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def decode_token(key: str, token: str) -> TokenPayload:
    """Check the signature and shape; every failure is a 401 that never repeats the token."""
    if not token or len(token) > 4096:
        raise Unauthorized("invalid auth token: malformed")
    try:
        data = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["subject", "subject_type"]})
    except jwt.InvalidSignatureError:
        raise Unauthorized("invalid auth token: signature does not match this platform's auth key") from None
    except jwt.ExpiredSignatureError:
        raise Unauthorized("auth token expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid auth token: malformed ({type(exc).__name__})") from None
    try:
        subject_type = SubjectType(data["subject_type"])
    except ValueError:
        raise Unauthorized("invalid auth token: unknown subject type") from None
    subject = data["subject"]
    scopes = data.get("scopes")
    if not isinstance(subject, str) or (scopes is not None and not isinstance(scopes, list)):
        raise Unauthorized("invalid auth token: malformed payload")
    return TokenPayload(
        subject=subject,
        subject_type=subject_type,
        seed=str(data.get("seed", "")),
        scopes=[str(s) for s in scopes] if scopes is not None else None,
    )
