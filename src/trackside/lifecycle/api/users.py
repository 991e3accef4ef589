"""`/users`: register, login, logout, change password, validate a token; staff manage accounts.

Login answers `{username, token, is_staff}` and sets the `X-Racetrack-Auth` cookie (Racetrack's
shape, so `racetrack login --username` works). Failed logins are slowed down per account and per
client address (`auth.ratelimit`).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from trackside.auth.ratelimit import LoginThrottle
from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller
from trackside.gateway.forwarding import TrustedProxies
from trackside.gateway.forwarding import client_address as forwarded_client_address
from trackside.lifecycle import accounts as lifecycle_accounts
from trackside.lifecycle.access import require_user
from trackside.lifecycle.api.deps import AUTH_COOKIE, caller_token, get_auth, get_caller, get_context
from trackside.lifecycle.api.models import Message
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()

COOKIE_MAX_AGE = 31 * 24 * 3600
_throttles: dict[int, LoginThrottle] = {}
_throttle_lock = threading.Lock()


class Credentials(BaseModel):
    username: str = Field(max_length=150)
    password: str = Field(max_length=1024)


class PasswordChange(BaseModel):
    old_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class NewUser(BaseModel):
    username: str = Field(max_length=150)
    password: str = Field(max_length=1024)
    is_staff: bool = False
    is_active: bool = True


class NewPassword(BaseModel):
    password: str = Field(max_length=1024)


class UserUpdate(BaseModel):
    is_active: bool | None = None
    is_staff: bool | None = None


class UserModel(BaseModel):
    id: str
    username: str
    is_active: bool
    is_staff: bool
    date_joined: str | None = Field(description="ISO 8601")
    last_login: str | None = Field(description="ISO 8601")


class Registered(UserModel):
    message: str


class UserAuth(BaseModel):
    """`racetrack login` reads `token` (after logging in) and `username` (after validating a token)."""

    username: str
    token: str | None
    is_staff: bool


def throttle(request: Request) -> LoginThrottle:
    """One throttle per app (so tests' platforms don't share counts)."""
    key = id(request.app)
    with _throttle_lock:
        found = _throttles.get(key)
        if found is None:
            found = _throttles[key] = LoginThrottle()
        return found


def client_address(request: Request) -> str:
    """The client's address, as `trackside.gateway.forwarding.client_address` tells it (docs/security.md)."""
    peer = request.client.host if request.client else "unknown"
    trusted = TrustedProxies(get_context(request).settings.trusted_proxies)
    secret: str | None = getattr(request.app.state, "gateway_secret", None)
    return forwarded_client_address(peer, request.headers, trusted, secret)


def set_auth_cookie(response: Response, token: str) -> None:
    response.set_cookie(AUTH_COOKIE, quote(token, safe=""), max_age=COOKIE_MAX_AGE, path="/", samesite="lax")


@router.post("/users/register", status_code=201, response_model=Registered)
def register(body: Credentials, context: LifecycleContext = Depends(get_context)) -> dict[str, Any]:
    user = lifecycle_accounts.register(context.db, body.username, body.password)
    return {**user, "message": "account created; an admin must activate it before you can log in"}


@router.post("/users/login", response_model=UserAuth)
def login(
    body: Credentials,
    request: Request,
    response: Response,
    context: LifecycleContext = Depends(get_context),
    auth: AuthService = Depends(get_auth),
) -> dict[str, Any]:
    answer = lifecycle_accounts.login(
        context.db, auth, body.username, body.password, throttle(request), client_address(request)
    )
    set_auth_cookie(response, answer["token"])
    return answer


@router.get("/users/logout", response_model=Message)
def logout(response: Response) -> dict[str, str]:
    response.delete_cookie(AUTH_COOKIE, path="/")
    return {"message": "logged out"}


@router.get("/users/validate_user_auth", response_model=UserAuth)
def validate_user_auth(request: Request, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    require_user(caller)
    return {"username": caller.name, "token": caller_token(request), "is_staff": caller.is_staff}


@router.put("/users/change_password", response_model=Message)
def change_password(
    body: PasswordChange,
    request: Request,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    lifecycle_accounts.change_own_password(
        context.db, caller, body.old_password, body.new_password, throttle(request), client_address(request)
    )
    return {"message": "password changed"}


# -- staff ---------------------------------------------------------------------------------------


@router.get("/users", response_model=list[UserModel])
def list_users(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, Any]]:
    return lifecycle_accounts.list_users(context.db, caller)


@router.post("/users", status_code=201, response_model=UserModel)
def create_user(
    body: NewUser, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return lifecycle_accounts.create_user(
        context.db, caller, body.username, body.password, active=body.is_active, staff=body.is_staff
    )


@router.patch("/users/{username}", response_model=UserModel)
def update_user(
    username: str,
    body: UserUpdate,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    """Activate or deactivate an account, or make it staff (staff get full_access)."""
    return lifecycle_accounts.update_user(context.db, caller, username, body.is_active, body.is_staff)


@router.post("/users/{username}/activate", response_model=UserModel)
def activate_user(
    username: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return lifecycle_accounts.update_user(context.db, caller, username, True, None)


@router.put("/users/{username}/password", response_model=Message)
def set_user_password(
    username: str,
    body: NewPassword,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    lifecycle_accounts.set_password(context.db, caller, username, body.password)
    return {"message": f"password of {username} changed"}


@router.delete("/users/{username}", response_model=Message)
def delete_user(
    username: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    """Delete an account; its subject, tokens and permissions go with it."""
    lifecycle_accounts.delete_user(context.db, caller, username)
    return {"message": f"user {username} deleted"}
