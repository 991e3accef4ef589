"""User accounts as the lifecycle API manages them: registration, password changes, and staff's
account administration (activate, make staff, set a password, delete). Each change is audited and
each staff-only function checks the caller. Logins and tokens are `trackside.auth`'s.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from trackside.auth import users as accounts
from trackside.auth.passwords import verify_password
from trackside.auth.permissions import add_grant
from trackside.auth.ratelimit import LoginThrottle
from trackside.auth.scopes import Scope
from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller, subject_of
from trackside.errors import InvalidInput, Unauthorized
from trackside.lifecycle import audit
from trackside.lifecycle.access import require_staff, require_user
from trackside.lifecycle.audit import EventType
from trackside.store.auth_models import AuthResourcePermission, AuthSubject, User
from trackside.store.database import Database


def user_to_api(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "date_joined": user.date_joined.isoformat() if user.date_joined else None,
        "last_login": user.last_login.isoformat() if user.last_login else None,
    }


def register(db: Database, username: str, password: str) -> dict[str, Any]:
    """A new, inactive account: an admin must activate it."""
    with db.session() as session:
        user = accounts.create_user(session, username, password, active=False, require_email=True)
        audit.record(session, EventType.USER_REGISTERED, username, subject=username)
        return user_to_api(user)


def login(
    db: Database, auth: AuthService, username: str, password: str, limiter: LoginThrottle, address: str
) -> dict[str, Any]:
    """`{username, token, is_staff}` for the right password of an active account; failures are counted
    per account and per client address, and slowed down once there are too many (`auth.ratelimit`)."""
    limiter.check(username, address)
    try:
        with db.session() as session:
            user = accounts.authenticate(session, username, password)
            token = auth.user_token(session, user)
            answer = {"username": user.username, "token": token, "is_staff": user.is_staff}
    except Unauthorized:
        limiter.failed(username, address)
        raise
    limiter.succeeded(username)
    return answer


def change_own_password(
    db: Database, caller: Caller, old_password: str, new_password: str, limiter: LoginThrottle, address: str
) -> None:
    """The caller's own password; a wrong old password counts as a failed login."""
    require_user(caller)
    limiter.check(caller.name, address)
    with db.session() as session:
        user = accounts.get_user(session, caller.name)
        if not verify_password(user.password_hash, old_password):
            limiter.failed(caller.name, address)
            raise InvalidInput("old_password: does not match the current password")
        accounts.set_password(session, user, new_password)
        audit.record(session, EventType.PASSWORD_CHANGED, caller.name, subject=caller.name)


def list_users(db: Database, caller: Caller) -> list[dict[str, Any]]:
    require_staff(caller)
    with db.session() as session:
        return [user_to_api(u) for u in session.scalars(select(User).order_by(User.username))]


def create_user(
    db: Database, caller: Caller, username: str, password: str, active: bool, staff: bool
) -> dict[str, Any]:
    require_staff(caller)
    with db.session() as session:
        user = accounts.create_user(session, username, password, active=active, staff=staff)
        audit.record(session, EventType.USER_CREATED, caller.username, subject=user.username, staff=staff)
        return user_to_api(user)


def update_user(
    db: Database, caller: Caller, username: str, is_active: bool | None, is_staff: bool | None
) -> dict[str, Any]:
    """Activate or deactivate an account, or make it staff (staff get full_access)."""
    require_staff(caller)
    with db.session() as session:
        user = accounts.get_user(session, username)
        if is_active is not None and is_active != user.is_active:
            user.is_active = is_active
            event = EventType.USER_ACTIVATED if is_active else EventType.USER_DEACTIVATED
            audit.record(session, event, caller.username, subject=username)
        if is_staff is not None and is_staff != user.is_staff:
            user.is_staff = is_staff
            subject_id = subject_of(session, user_id=user.id).id
            if is_staff:
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
                EventType.PERMISSION_GRANTED if is_staff else EventType.PERMISSION_REVOKED,
                caller.username,
                subject=username,
                scope=Scope.FULL_ACCESS.value,
            )
        return user_to_api(user)


def set_password(db: Database, caller: Caller, username: str, password: str) -> None:
    require_staff(caller)
    with db.session() as session:
        user = accounts.get_user(session, username)
        accounts.set_password(session, user, password)
        audit.record(session, EventType.PASSWORD_CHANGED, caller.username, subject=username)


def delete_user(db: Database, caller: Caller, username: str) -> None:
    """Delete an account; its subject, tokens and permissions go with it."""
    require_staff(caller)
    if username == caller.name:
        raise InvalidInput("you can't delete your own account")
    with db.session() as session:
        user = accounts.get_user(session, username)
        subject = session.scalars(select(AuthSubject).where(AuthSubject.user_id == user.id)).first()
        if subject is not None:
            session.delete(subject)  # tokens and permission rows cascade
        session.delete(user)
        audit.record(session, EventType.USER_DELETED, caller.username, subject=username)
