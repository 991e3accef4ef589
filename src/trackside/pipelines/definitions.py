"""Named, versioned pipeline definitions: each save of a name is its next version (1, 2, ...).

A definition is validated as a run would be, so a saved pipeline always starts; runs record the name
and version they came from, and a schedule runs either a fixed version or the latest at each tick.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trackside.errors import InvalidInput, NotFound
from trackside.pipelines.models import PipelineDefinition
from trackside.pipelines.runs import timestamp
from trackside.pipelines.validation import NAME_MAX, NAME_PATTERN
from trackside.store.database import Database


def check_name(name: str, what: str = "pipeline") -> None:
    if len(name) > NAME_MAX or not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"{what} name {name!r} is not valid: at most {NAME_MAX} letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )


def save_definition(session: Session, name: str, body: dict[str, Any], created_by: str | None) -> PipelineDefinition:
    check_name(name)
    latest = session.scalar(select(func.max(PipelineDefinition.version)).where(PipelineDefinition.name == name))
    definition = PipelineDefinition(name=name, version=(latest or 0) + 1, spec=body, created_by=created_by)
    session.add(definition)
    session.flush()
    return definition


def get_definition(session: Session, name: str, version: int | None = None) -> PipelineDefinition:
    query = select(PipelineDefinition).where(PipelineDefinition.name == name)
    if version is not None:
        query = query.where(PipelineDefinition.version == version)
    found = session.scalars(query.order_by(PipelineDefinition.version.desc())).first()
    if found is None:
        suffix = f" version {version}" if version is not None else ""
        raise NotFound(f"pipeline {name}{suffix} was not found")
    return found


def list_definitions(session: Session) -> list[PipelineDefinition]:
    """The latest version of every name."""
    latest = (
        select(PipelineDefinition.name, func.max(PipelineDefinition.version).label("version"))
        .group_by(PipelineDefinition.name)
        .subquery()
    )
    query = select(PipelineDefinition).join(
        latest, (PipelineDefinition.name == latest.c.name) & (PipelineDefinition.version == latest.c.version)
    )
    return list(session.scalars(query.order_by(PipelineDefinition.name)))


def versions_of(session: Session, name: str) -> list[int]:
    rows = session.scalars(
        select(PipelineDefinition.version).where(PipelineDefinition.name == name).order_by(PipelineDefinition.version)
    )
    return list(rows)


def definition_json(definition: PipelineDefinition, versions: list[int] | None = None) -> dict[str, Any]:
    from trackside.pipelines.runs import redacted

    body: dict[str, Any] = {
        "kind": "PipelineDefinition",
        "metadata": {
            "selfLink": f"/api/pipelines/{definition.name}/versions/{definition.version}",
            "name": definition.name,
            "version": definition.version,
            "createdAt": timestamp(definition.created_at),
            "createdBy": definition.created_by,
        },
        "spec": redacted(definition.spec),
    }
    if versions is not None:
        body["versions"] = versions
    return body


def definition_list(db: Database) -> dict[str, Any]:
    """The latest version of every named pipeline, as a PipelineList."""
    with db.session() as session:
        items = [definition_json(d) for d in list_definitions(session)]
    return {"kind": "PipelineList", "metadata": {"selfLink": "/api/pipelines"}, "items": items}


def definition_body(db: Database, name: str, version: int | None = None) -> dict[str, Any]:
    """A named pipeline (its latest version by default), with the versions it has."""
    with db.session() as session:
        return definition_json(get_definition(session, name, version), versions_of(session, name))
