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
from sqlalchemy import delete, select

from trackside.auth import users as accounts
from trackside.auth.passwords import verify_password
from trackside.auth.permissions import add_grant
from trackside.auth.ratelimit import LoginThrottle
from trackside.auth.scopes import Scope
from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller, subject_of
from trackside.errors import InvalidInput, Unauthorized
from trackside.gateway.forwarding import TrustedProxies
from trackside.gateway.forwarding import client_address as forwarded_client_address
from trackside.lifecycle import audit
from trackside.lifecycle.access import require_staff, require_user
from trackside.lifecycle.api.deps import AUTH_COOKIE, caller_token, get_auth, get_caller, get_context
from trackside.lifecycle.api.models import Message
from trackside.lifecycle.audit import EventType
from trackside.lifecycle.context import LifecycleContext
from trackside.store.auth_models import AuthResourcePermission, AuthSubject, User

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


def user_to_api(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "date_joined": user.date_joined.isoformat() if user.date_joined else None,
        "last_login": user.last_login.isoformat() if user.last_login else None,
    }


@router.post("/users/register", status_code=201, response_model=Registered)
def register(body: Credentials, context: LifecycleContext = Depends(get_context)) -> dict[str, Any]:
    with context.db.session() as session:
        user = accounts.create_user(session, body.username, body.password, active=False, require_email=True)
        audit.record(session, EventType.USER_REGISTERED, body.username, subject=body.username)
        return {**user_to_api(user), "message": "account created; an admin must activate it before you can log in"}


@router.post("/users/login", response_model=UserAuth)
def login(
    body: Credentials,
    request: Request,
    response: Response,
    context: LifecycleContext = Depends(get_context),
    auth: AuthService = Depends(get_auth),
) -> dict[str, Any]:
    limiter = throttle(request)
    address = client_address(request)
    limiter.check(body.username, address)
    try:
        with context.db.session() as session:
            user = accounts.authenticate(session, body.username, body.password)
            token = auth.user_token(session, user)
            answer = {"username": user.username, "token": token, "is_staff": user.is_staff}
    except Unauthorized:
        limiter.failed(body.username, address)
        raise
    limiter.succeeded(body.username)
    set_auth_cookie(response, token)
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
    require_user(caller)
    limiter = throttle(request)
    address = client_address(request)
    limiter.check(caller.name, address)
    with context.db.session() as session:
        user = accounts.get_user(session, caller.name)
        if not verify_password(user.password_hash, body.old_password):
            limiter.failed(caller.name, address)
            raise InvalidInput("old_password: does not match the current password")
        accounts.set_password(session, user, body.new_password)
        audit.record(session, EventType.PASSWORD_CHANGED, caller.name, subject=caller.name)
    return {"message": "password changed"}


# -- staff ---------------------------------------------------------------------------------------


@router.get("/users", response_model=list[UserModel])
def list_users(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, Any]]:
    require_staff(caller)
    with context.db.session() as session:
        return [user_to_api(u) for u in session.scalars(select(User).order_by(User.username))]


@router.post("/users", status_code=201, response_model=UserModel)
def create_user(
    body: NewUser, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    require_staff(caller)
    with context.db.session() as session:
        user = accounts.create_user(session, body.username, body.password, active=body.is_active, staff=body.is_staff)
        audit.record(session, EventType.USER_CREATED, caller.username, subject=user.username, staff=body.is_staff)
        return user_to_api(user)


@router.patch("/users/{username}", response_model=UserModel)
def update_user(
    username: str,
    body: UserUpdate,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    """Activate or deactivate an account, or make it staff (staff get full_access)."""
    require_staff(caller)
    with context.db.session() as session:
        user = accounts.get_user(session, username)
        if body.is_active is not None and body.is_active != user.is_active:
            user.is_active = body.is_active
            event = EventType.USER_ACTIVATED if body.is_active else EventType.USER_DEACTIVATED
            audit.record(session, event, caller.username, subject=username)
        if body.is_staff is not None and body.is_staff != user.is_staff:
            user.is_staff = body.is_staff
            subject_id = subject_of(session, user_id=user.id).id
            if body.is_staff:
                add_grant(session, subject_id, Scope.FULL_ACCESS)
            else:
                session.execute(
                    delete(AuthResourcePermission).where(
                        AuthResourcePermission.auth_subject_id == subject_id,
                        AuthResourcePermission.scope == Scope.FULL_ACCESS.value,
                    )
                )
            audit.record(
                session,
                EventType.PERMISSION_GRANTED if body.is_staff else EventType.PERMISSION_REVOKED,
                caller.username,
                subject=username,
                scope=Scope.FULL_ACCESS.value,
            )
        return user_to_api(user)


@router.post("/users/{username}/activate", response_model=UserModel)
def activate_user(
    username: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return update_user(username, UserUpdate(is_active=True), caller, context)


@router.put("/users/{username}/password", response_model=Message)
def set_user_password(
    username: str,
    body: NewPassword,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    require_staff(caller)
    with context.db.session() as session:
        user = accounts.get_user(session, username)
        accounts.set_password(session, user, body.password)
        audit.record(session, EventType.PASSWORD_CHANGED, caller.username, subject=username)
    return {"message": f"password of {username} changed"}


@router.delete("/users/{username}", response_model=Message)
def delete_user(
    username: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    """Delete an account; its subject, tokens and permissions go with it."""
    require_staff(caller)
    if username == caller.name:
        raise InvalidInput("you can't delete your own account")
    with context.db.session() as session:
        user = accounts.get_user(session, username)
        subject = session.scalars(select(AuthSubject).where(AuthSubject.user_id == user.id)).first()
        if subject is not None:
            session.delete(subject)  # tokens and permission rows cascade
        session.delete(user)
        audit.record(session, EventType.USER_DELETED, caller.username, subject=username)
    return {"message": f"user {username} deleted"}
