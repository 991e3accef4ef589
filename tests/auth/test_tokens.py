"""Tokens: HS256 JWTs with Racetrack's payload; anything not signed with our key is a 401."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from trackside.auth.tokens import SubjectType, decode_token, encode_token
from trackside.errors import Unauthorized

KEY = "k" * 32


def test_a_token_round_trips_with_racetracks_payload() -> None:
    token = encode_token(KEY, "alice@example.com", SubjectType.USER)
    payload = jwt.decode(token, KEY, algorithms=["HS256"])
    assert set(payload) == {"seed", "subject", "subject_type"}
    assert payload["subject_type"] == "user"
    decoded = decode_token(KEY, token)
    assert decoded.subject == "alice@example.com" and decoded.subject_type is SubjectType.USER


def test_every_token_is_unique_thanks_to_its_seed() -> None:
    assert encode_token(KEY, "a", SubjectType.ESC) != encode_token(KEY, "a", SubjectType.ESC)


def test_internal_tokens_carry_scopes() -> None:
    token = encode_token(KEY, "recovery", SubjectType.INTERNAL, ["full_access"])
    assert decode_token(KEY, token).scopes == ["full_access"]


def test_a_token_signed_with_another_key_is_refused_without_echoing_it() -> None:
    token = encode_token("another key, another platform, another day", "alice", SubjectType.USER)
    with pytest.raises(Unauthorized) as caught:
        decode_token(KEY, token)
    assert "signature" in caught.value.message
    assert token not in caught.value.message


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "x" * 5000])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized):
        decode_token(KEY, token)


def test_the_none_algorithm_is_refused() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    body = (
        base64.urlsafe_b64encode(json.dumps({"subject": "admin", "subject_type": "internal"}).encode())
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(Unauthorized):
        decode_token(KEY, f"{header}.{body}.")


def test_an_unknown_subject_type_is_refused() -> None:
    token = jwt.encode({"subject": "x", "subject_type": "god"}, KEY, algorithm="HS256")
    with pytest.raises(Unauthorized):
        decode_token(KEY, token)


def test_an_expired_jwt_is_refused() -> None:
    token = jwt.encode({"subject": "x", "subject_type": "user", "exp": 1}, KEY, algorithm="HS256")
    with pytest.raises(Unauthorized) as caught:
        decode_token(KEY, token)
    assert "expired" in caught.value.message
