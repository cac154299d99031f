"""`GET /api/v1/audit`: the audit log, newest first (admins only; docs/security.md, "Audit log")."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import USER_NAME, AuditItem, AuditPage, UTCTime
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import audit

router = APIRouter(tags=["audit"], responses=responses(401, 403, 422))


@router.get("/audit", response_model=AuditPage, summary="Who changed what, when and from where (admin)")
def audit_log(
    actor: str | None = Query(None, pattern=USER_NAME, max_length=64, description="only this user's requests"),
    action: str | None = Query(
        None,
        pattern=r"^[a-z_]+(\.[a-z_]*)?$",
        max_length=32,
        description="an action (`user.update`), or every action of a kind when it ends with a dot (`user.`)",
    ),
    since: UTCTime | None = Query(None, description="only entries at or after this time (ISO-8601)"),
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(50, ge=1, le=200),
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
) -> AuditPage:
    """Every change to users, roles, tokens, projects and targets, and every batch operation: `{items: [{at,
    actor, action, subject, address, outcome, details}], total, page, page_size}`. `outcome` is `ok` or the
    code the request was refused with. 403 unless the caller is an admin."""
    caller.require_admin()
    with services.db.read() as s:
        entries, total = audit.entries(
            s, actor=actor, action=action, since=since, offset=(page - 1) * page_size, limit=page_size
        )
    return AuditPage(items=[AuditItem.from_record(e) for e in entries], total=total, page=page, page_size=page_size)
