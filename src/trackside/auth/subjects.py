"""Who is calling: users, external service consumers (ESC), job families and internal services.

Every non-internal subject has one AuthSubject row, which owns its tokens and permissions.
`Caller` is the resolved identity a request carries through the lifecycle API.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.tokens import SubjectType
from trackside.store.auth_models import AuthSubject

_DISPLAY = {
    SubjectType.USER: "User",
    SubjectType.ESC: "ESC",
    SubjectType.JOB_FAMILY: "Job family",
    SubjectType.INTERNAL: "Internal",
}


@dataclass(frozen=True)
class Caller:
    subject_type: SubjectType
    name: str  # username, ESC name, family name or service name
    subject_id: str | None = None  # the AuthSubject row; None for internal tokens
    is_staff: bool = False
    scopes: list[str] | None = None  # internal tokens only
    esc_id: str | None = None

    @property
    def display(self) -> str:
        """Racetrack's caller string: "User x", "ESC y", "Job family z"."""
        return f"{_DISPLAY[self.subject_type]} {self.name}"

    @property
    def username(self) -> str | None:
        """The name recorded as executor in deployments and the audit log."""
        if self.subject_type == SubjectType.USER:
            return self.name
        if self.subject_type == SubjectType.INTERNAL:
            return self.name or "internal"
        return self.display

    @property
    def is_user(self) -> bool:
        return self.subject_type == SubjectType.USER

    @property
    def is_internal(self) -> bool:
        return self.subject_type == SubjectType.INTERNAL


def subject_of(
    session: Session, *, user_id: str | None = None, esc_id: str | None = None, job_family_id: str | None = None
) -> AuthSubject:
    """The subject row of one user, ESC or family, created on first use."""
    if sum(v is not None for v in (user_id, esc_id, job_family_id)) != 1:
        raise ValueError("a subject is exactly one of a user, an ESC or a job family")
    if user_id is not None:
        query = select(AuthSubject).where(AuthSubject.user_id == user_id)
    elif esc_id is not None:
        query = select(AuthSubject).where(AuthSubject.esc_id == esc_id)
    else:
        query = select(AuthSubject).where(AuthSubject.job_family_id == job_family_id)
    subject = session.scalars(query).first()
    if subject is None:
        subject = AuthSubject(user_id=user_id, esc_id=esc_id, job_family_id=job_family_id)
        session.add(subject)
        session.flush()
    return subject
