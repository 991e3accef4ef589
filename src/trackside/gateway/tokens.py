"""Finding the caller's auth token in a request, in Racetrack Pub's order of precedence."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

AUTH_HEADER = b"x-racetrack-auth"
COOKIE_NAME = "X-Racetrack-Auth"
LEGACY_HEADERS = (b"x-racetrack-user-auth", b"x-racetrack-esc-auth")

# Request headers (lower-case) whose values token extraction reads.
TOKEN_HEADERS = frozenset({AUTH_HEADER, b"cookie", b"authorization", *LEGACY_HEADERS})


def cookie_value(cookie_header: str, name: str) -> str | None:
    for part in cookie_header.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key == name:
            return unquote(value.strip().strip('"'))
    return None


def extract_token(headers: Mapping[bytes, bytes]) -> str | None:
    """First found of: X-Racetrack-Auth header, its cookie (URL-unquoted), a Bearer token, legacy headers.

    `headers` maps lower-case header names to raw values.
    """
    value = headers.get(AUTH_HEADER)
    if value:
        return value.decode("latin-1").strip()
    cookie = headers.get(b"cookie")
    if cookie and COOKIE_NAME.encode() in cookie:
        token = cookie_value(cookie.decode("latin-1"), COOKIE_NAME)
        if token:
            return token
    authorization = headers.get(b"authorization")
    if authorization:
        scheme, _, credentials = authorization.decode("latin-1").strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    for legacy in LEGACY_HEADERS:
        value = headers.get(legacy)
        if value:
            return value.decode("latin-1").strip()
    return None
