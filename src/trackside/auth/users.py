"""User accounts: register, create (admin), passwords, activation, and checking a login.

Used by the lifecycle API and by `trackside admin`, which works on the store without a server.
New users get Racetrack's default permissions (read, call, deploy on everything).
"""

from __future__ import annotations

import functools
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.passwords import check_password_strength, hash_password, needs_rehash, verify_password
from trackside.auth.permissions import add_grant
from trackside.auth.scopes import NEW_USER_SCOPES, Scope
from trackside.auth.subjects import subject_of
from trackside.errors import AlreadyExists, InvalidInput, NotFound, Unauthorized
from trackside.store.auth_models import User
from trackside.store.base import utcnow

USERNAME_RE = re.compile(r"[A-Za-z0-9@.+_-]{1,150}\Z")


@functools.cache
def _dummy_hash() -> str:
    """A real argon2 hash, so a login for an unknown user costs as much as one for a known user.
    Made on first use: hashing at import would add ~0.2 s to every start of every component."""
    return hash_password("trackside-no-such-user")


def check_username(username: str, *, require_email: bool = False) -> str:
    if not USERNAME_RE.match(username or ""):
        raise InvalidInput("username: use 1-150 letters, digits and @ . + - _ only")
    if require_email and "@" not in username:
        raise InvalidInput("username: must be an email address (contain @)")
    return username


def find_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def get_user(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise NotFound(f"user {username} not found")
    return user


def create_user(
    session: Session, username: str, password: str, *, active: bool, staff: bool = False, require_email: bool = False
) -> User:
    check_username(username, require_email=require_email)
    check_password_strength(password, username)
    if find_user(session, username) is not None:
        raise AlreadyExists(f"user {username} already exists")
    user = User(username=username, password_hash=hash_password(password), is_active=active, is_staff=staff)
    session.add(user)
    session.flush()
    subject = subject_of(session, user_id=user.id)
    for scope in NEW_USER_SCOPES:
        add_grant(session, subject.id, scope)
    if staff:
        add_grant(session, subject.id, Scope.FULL_ACCESS)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    check_password_strength(password, user.username)
    user.password_hash = hash_password(password)


def authenticate(session: Session, username: str, password: str) -> User:
    """The user if the password is right and the account active; one vague 401 otherwise."""
    user = find_user(session, username)
    if user is None:
        verify_password(_dummy_hash(), password)
        raise Unauthorized("invalid username or password")
    if not verify_password(user.password_hash, password):
        raise Unauthorized("invalid username or password")
    if not user.is_active:
        raise Unauthorized(f"user {username} is not active yet: ask an admin to activate the account")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login = utcnow()
    return user
