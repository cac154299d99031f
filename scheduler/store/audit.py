"""The audit log: one row per change to users, roles, tokens, projects and targets, and per batch operation.

Rows are only ever added (`record`) and read (`entries`); nothing here updates or deletes one. What goes in is
decided by the caller (`jobctl.api.audit`), which never passes a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.orm import Session

from jobctl.scheduler.records import AuditRecord
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import connection_of

MAX_SUBJECT = 600


def record(
    session: Session | Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    address: str | None,
    outcome: str,
    details: Mapping[str, Any],
) -> None:
    """Add one entry, in the caller's transaction (so a change and its entry commit together or not at all)."""
    connection_of(session).execute(
        insert(models.AuditEntry).values(
            at=at,
            actor=actor[:64],
            action=action[:32],
            subject=subject[:MAX_SUBJECT],
            address=None if address is None else address[:64],
            outcome=outcome[:32],
            details=dict(details),
        )
    )


def entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AuditRecord], int]:
    """The entries matching every given filter, newest first, from `offset`, at most `limit`; and how many match.
    `action` matches exactly, or every action of a kind when it ends with `.` (`user.` gives `user.create`, ...)."""
    query = select(models.AuditEntry)
    if actor is not None:
        query = query.where(models.AuditEntry.actor == actor)
    if action is not None:
        if action.endswith("."):
            query = query.where(models.AuditEntry.action.startswith(action, autoescape=True))
        else:
            query = query.where(models.AuditEntry.action == action)
    if since is not None:
        query = query.where(models.AuditEntry.at >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(models.AuditEntry.at.desc(), models.AuditEntry.id.desc()).offset(offset).limit(limit)
    )
    return [
        AuditRecord(
            at=r.at,
            actor=r.actor,
            action=r.action,
            subject=r.subject,
            address=r.address,
            outcome=r.outcome,
            details=r.details,
        )
        for r in rows
    ], total
