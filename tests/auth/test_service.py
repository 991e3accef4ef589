"""The auth service on a real store: stored tokens, revocation, expiry, and re-signing after a key change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from trackside.auth.crypto import SecretBox
from trackside.auth.service import AuthService
from trackside.auth.subjects import subject_of
from trackside.auth.tokens import SubjectType
from trackside.auth.users import create_user
from trackside.errors import Unauthorized
from trackside.store.auth_models import AuthToken, User
from trackside.store.base import utcnow
from trackside.store.database import Database
from trackside.store.models import JobFamily

OLD_KEY, NEW_KEY = "old-auth-key-" + "x" * 24, "new-auth-key-" + "y" * 24


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key().decode())


def make_user(db: Database, service: AuthService, name: str = "alice@example.com") -> str:
    with db.session() as session:
        user = create_user(session, name, "Tangerine-Orbit-88", active=True)
        return service.user_token(session, user)


def test_a_user_token_resolves_to_its_user_and_is_stored_encrypted(db: Database, box: SecretBox) -> None:
    service = AuthService(OLD_KEY, box, db)
    token = make_user(db, service)
    caller = service.resolve(token)
    assert caller.display == "User alice@example.com" and not caller.is_staff
    with db.session() as session:
        row = session.scalars(select(AuthToken)).one()
        assert token not in row.token and service.token_value(row) == token


def test_revoked_expired_and_inactive_are_refused(db: Database, box: SecretBox) -> None:
    service = AuthService(OLD_KEY, box, db)
    token = make_user(db, service)
    with db.session() as session:
        session.scalars(select(User)).one().is_active = False
    with pytest.raises(Unauthorized, match="not active"):
        service.resolve(token)
    with db.session() as session:
        session.scalars(select(User)).one().is_active = True
        session.scalars(select(AuthToken)).one().expiry_time = utcnow() - timedelta(seconds=1)
    with pytest.raises(Unauthorized, match="expired"):
        service.resolve(token)
    with db.session() as session:
        row = session.scalars(select(AuthToken)).one()
        row.expiry_time, row.active = None, False
    with pytest.raises(Unauthorized, match="revoked"):
        service.resolve(token)


def test_regenerating_a_users_token_revokes_the_old_one(db: Database, box: SecretBox) -> None:
    service = AuthService(OLD_KEY, box, db)
    old = make_user(db, service)
    with db.session() as session:
        new = service.regenerate_user_token(session, session.scalars(select(User)).one())
    assert service.resolve(new).name == "alice@example.com"
    with pytest.raises(Unauthorized):
        service.resolve(old)


def test_after_a_key_change_regenerate_re_signs_every_token_of_a_kind(db: Database, box: SecretBox) -> None:
    old_service = AuthService(OLD_KEY, box, db)
    user_token = make_user(db, old_service)
    with db.session() as session:
        session.add(JobFamily(name="adder"))
    family_token = old_service.family_token("adder")

    new_service = AuthService(NEW_KEY, box, db)
    for token in (user_token, family_token):
        with pytest.raises(Unauthorized, match="signature"):
            new_service.resolve(token)
    assert new_service.regenerate_all(SubjectType.USER) == 1
    assert new_service.regenerate_all(SubjectType.JOB_FAMILY) == 1
    with db.session() as session:
        user = session.scalars(select(User)).one()
        new_user_token = new_service.user_token(session, user)
    assert new_service.resolve(new_user_token).display == "User alice@example.com"
    assert new_service.resolve(new_service.family_token("adder")).display == "Job family adder"


def test_internal_tokens_are_not_stored_and_pass_with_their_scopes(db: Database, box: SecretBox) -> None:
    service = AuthService(OLD_KEY, box, db)
    caller = service.resolve(service.internal_token("recovery"))
    assert caller.is_internal and caller.scopes == ["full_access"]
    with db.session() as session:
        assert session.scalars(select(AuthToken)).first() is None
        family = JobFamily(name="x")
        session.add(family)
        session.flush()
        assert subject_of(session, job_family_id=family.id).job_family_id == family.id
