"""The auth service: turns a presented token into a `Caller`, and issues and re-signs tokens.

One instance per lifecycle process (and one per `trackside admin` command): it holds the auth key
and the secrets box. Token values are stored encrypted (they are secrets); a presented token finds
its row by sha256 digest, so no token is ever compared or searched for in plain text.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.crypto import SecretBox, load_secret_box
from trackside.auth.keys import load_auth_key
from trackside.auth.subjects import Caller, subject_of
from trackside.auth.tokens import SubjectType, decode_token, encode_token
from trackside.config import Settings
from trackside.errors import NotFound, Unauthorized
from trackside.store.auth_models import AuthSubject, AuthToken, Esc, User
from trackside.store.base import utcnow
from trackside.store.database import Database
from trackside.store.models import JobFamily

LAST_USE_RESOLUTION = timedelta(days=1)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class AuthService:
    def __init__(self, key: str, box: SecretBox, db: Database) -> None:
        self.key = key
        self.box = box
        self.db = db

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> AuthService:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls(load_auth_key(settings), load_secret_box(settings.data_dir, settings.secrets_key or None), db)

    # -- resolving ---------------------------------------------------------------------------------

    def resolve(self, token: str | None) -> Caller:
        """The caller a token belongs to; Unauthorized (401) for anything short of a live token."""
        if not token:
            raise Unauthorized("no auth token given: send it in the X-Racetrack-Auth header")
        payload = decode_token(self.key, token)
        if payload.subject_type == SubjectType.INTERNAL:
            return Caller(SubjectType.INTERNAL, payload.subject, scopes=payload.scopes)
        with self.db.session() as session:
            row = session.scalars(select(AuthToken).where(AuthToken.token_digest == token_digest(token))).first()
            if row is None:
                raise Unauthorized("auth token not recognised (revoked or replaced)")
            if not row.active:
                raise Unauthorized("auth token has been revoked")
            expiry = aware(row.expiry_time)
            now = datetime.now(UTC)
            if expiry is not None and expiry <= now:
                raise Unauthorized("auth token expired")
            subject = session.get(AuthSubject, row.auth_subject_id)
            if subject is None:
                raise Unauthorized("auth token's subject no longer exists")
            caller = self._caller(session, subject, payload.subject_type, payload.subject)
            last_use = aware(row.last_use_time)
            if last_use is None or now - last_use > LAST_USE_RESOLUTION:
                row.last_use_time = now
            return caller

    def _caller(self, session: Session, subject: AuthSubject, subject_type: SubjectType, name: str) -> Caller:
        if subject_type == SubjectType.USER and subject.user_id is not None:
            user = session.get(User, subject.user_id)
            if user is None or user.username != name:
                raise Unauthorized("auth token's user no longer exists")
            if not user.is_active:
                raise Unauthorized(f"user {user.username} is not active: ask an admin to activate the account")
            return Caller(SubjectType.USER, user.username, subject.id, is_staff=user.is_staff)
        if subject_type == SubjectType.ESC and subject.esc_id is not None:
            esc = session.get(Esc, subject.esc_id)
            if esc is None or esc.id != name:
                raise Unauthorized("auth token's ESC no longer exists")
            return Caller(SubjectType.ESC, esc.name, subject.id, esc_id=esc.id)
        if subject_type == SubjectType.JOB_FAMILY and subject.job_family_id is not None:
            family = session.get(JobFamily, subject.job_family_id)
            if family is None or family.name != name:
                raise Unauthorized("auth token's job family no longer exists")
            return Caller(SubjectType.JOB_FAMILY, family.name, subject.id)
        raise Unauthorized("auth token does not match its stored subject")

    # -- issuing -----------------------------------------------------------------------------------

    def issue(
        self,
        session: Session,
        subject: AuthSubject,
        subject_name: str,
        subject_type: SubjectType,
        expiry_time: datetime | None = None,
    ) -> tuple[AuthToken, str]:
        token = encode_token(self.key, subject_name, subject_type)
        row = AuthToken(
            auth_subject_id=subject.id,
            token=self.box.encrypt(token),
            token_digest=token_digest(token),
            expiry_time=expiry_time,
            active=True,
        )
        session.add(row)
        session.flush()
        return row, token

    def token_value(self, row: AuthToken) -> str:
        return self.box.decrypt(row.token)

    def internal_token(self, name: str, scopes: list[str] | None = None) -> str:
        """Racetrack's `generate-auth`: full access, never stored (so it can't be revoked; keep it safe)."""
        return encode_token(self.key, name, SubjectType.INTERNAL, scopes if scopes is not None else ["full_access"])

    def live_token(self, session: Session, subject: AuthSubject) -> str | None:
        now = datetime.now(UTC)
        rows = session.scalars(
            select(AuthToken)
            .where(AuthToken.auth_subject_id == subject.id, AuthToken.active.is_(True))
            .order_by(AuthToken.create_time.desc())
        )
        for row in rows:
            expiry = aware(row.expiry_time)
            if expiry is None or expiry > now:
                return self.token_value(row)
        return None

    def user_token(self, session: Session, user: User) -> str:
        """The user's current token (login hands it out), issued on first need."""
        subject = subject_of(session, user_id=user.id)
        return self.live_token(session, subject) or self.issue(session, subject, user.username, SubjectType.USER)[1]

    def regenerate_user_token(self, session: Session, user: User) -> str:
        """Revoke every token of the user and issue a new one."""
        subject = subject_of(session, user_id=user.id)
        for row in session.scalars(select(AuthToken).where(AuthToken.auth_subject_id == subject.id)):
            row.active = False
        return self.issue(session, subject, user.username, SubjectType.USER)[1]

    def family_token(self, family_name: str) -> str:
        """The family's token, given to its jobs as AUTH_TOKEN; created on demand."""
        with self.db.session() as session:
            family = session.scalars(select(JobFamily).where(JobFamily.name == family_name)).first()
            if family is None:
                raise NotFound(f"job family {family_name} not found")
            subject = subject_of(session, job_family_id=family.id)
            return (
                self.live_token(session, subject)
                or self.issue(session, subject, family.name, SubjectType.JOB_FAMILY)[1]
            )

    def regenerate_all(self, kind: SubjectType) -> int:
        """Re-sign every active token of a kind with the current key (after the auth key changed).

        The stored rows keep their ids, expiry and subjects; their values change, so holders fetch
        them again (users by logging in, jobs on their next deploy, ESCs from staff).
        """
        count = 0
        with self.db.session() as session:
            rows = session.execute(
                select(AuthToken, AuthSubject)
                .join(AuthSubject, AuthSubject.id == AuthToken.auth_subject_id)
                .where(AuthToken.active.is_(True))
            ).all()
            for row, subject in rows:
                name = self._subject_name(session, subject, kind)
                if name is None:
                    continue
                token = encode_token(self.key, name, kind)
                row.token = self.box.encrypt(token)
                row.token_digest = token_digest(token)
                row.last_use_time = None
                count += 1
        return count

    @staticmethod
    def _subject_name(session: Session, subject: AuthSubject, kind: SubjectType) -> str | None:
        if kind == SubjectType.USER and subject.user_id:
            user = session.get(User, subject.user_id)
            return user.username if user else None
        if kind == SubjectType.ESC and subject.esc_id:
            return subject.esc_id
        if kind == SubjectType.JOB_FAMILY and subject.job_family_id:
            family = session.get(JobFamily, subject.job_family_id)
            return family.name if family else None
        return None


def now_plus(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)
