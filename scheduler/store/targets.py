"""The `record` targets a project registers through the API (`PUT /projects/{p}/targets/record/{name}`): their
attributes and version, which pinned jobs are checked against."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    delete,
    select,
)
from sqlalchemy.orm import Session

from jobctl.scheduler.errors import NotFound
from jobctl.scheduler.records import (
    TargetRecord,
)
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import utcnow


def put_record_target(
    session: Session, project_id: int, project: str, kind: str, name: str, attributes: dict[str, Any]
) -> tuple[TargetRecord, bool]:
    """Create the target, or change it (version + 1) if its attributes differ. Returns (target, changed)."""
    now = utcnow()
    row = session.scalar(
        select(models.Target)
        .where(models.Target.project_id == project_id, models.Target.kind == kind, models.Target.name == name)
        .with_for_update()
    )
    changed = False
    if row is None:
        row = models.Target(
            project_id=project_id,
            kind=kind,
            name=name,
            version=1,
            attributes=attributes,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    elif row.attributes != attributes:
        row.attributes = attributes
        row.version += 1
        row.updated_at = now
        changed = True
    session.flush()
    return _target(row, project), changed


def list_targets(session: Session, project_id: int, project: str) -> list[TargetRecord]:
    rows = session.scalars(
        select(models.Target)
        .where(models.Target.project_id == project_id)
        .order_by(models.Target.kind, models.Target.name)
    )
    return [_target(r, project) for r in rows]


def delete_target(session: Session, project_id: int, kind: str, name: str) -> None:
    """Remove a registered target; `NotFound` if there is none."""
    result = session.execute(
        delete(models.Target).where(
            models.Target.project_id == project_id, models.Target.kind == kind, models.Target.name == name
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"target {kind}/{name} not found")


def _target(row: models.Target, project: str) -> TargetRecord:
    return TargetRecord(
        project=project,
        kind=row.kind,
        name=row.name,
        version=row.version,
        attributes=dict(row.attributes),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def version(session: Session, project_id: int, kind: str, name: str) -> int | None:
    """The target's version (its change counter), or None if it does not exist."""
    return session.scalar(
        select(models.Target.version).where(
            models.Target.project_id == project_id, models.Target.kind == kind, models.Target.name == name
        )
    )


def attributes(session: Session, project_id: int, kind: str, name: str) -> dict[str, Any]:
    """The attributes stored with the target (empty if it is gone)."""
    stored = session.scalar(
        select(models.Target.attributes).where(
            models.Target.project_id == project_id, models.Target.kind == kind, models.Target.name == name
        )
    )
    return dict(stored or {})
