"""`/api/v1/projects/{project}/targets`: the `record` targets jobs can work on (docs/contract.md §1, §4). Every
change is recorded in the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Path

from jobctl.api.audit import Audit, audit_trail
from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import TARGET_KIND, Target, TargetDeleted, TargetPut
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts
from jobctl.scheduler.store import targets as targets_store

router = APIRouter(prefix="/projects/{project}/targets", tags=["targets"], responses=responses(401, 404, 422))

KindPath = Path(pattern=TARGET_KIND, max_length=32)
NamePath = Path(min_length=1, max_length=512)
ProjectPath = Path(min_length=1, max_length=64, description="the project's name")


@router.put(
    "/{kind}/{name}",
    response_model=Target,
    responses=responses(403, 422),
    summary="Create or change a record target (version + 1 when its attributes change)",
)
def put_target(
    project: str = ProjectPath,
    kind: str = KindPath,
    name: str = NamePath,
    body: TargetPut | None = Body(None),
    audit: Audit = Depends(audit_trail),
) -> Target:
    """Create the target at version 1, or replace its attributes; the version increments only if they differ,
    and the project's non-final jobs pinned to the old version are auto-discarded."""
    with audit.attempt("target.put", f"{project}/{kind}/{name}") as change:
        audit.caller.require_operator(project)
        target = audit.services.ops.put_target(project, kind, name, (body or TargetPut()).attributes)
        change.details["version"] = target.version
    return Target.from_record(target)


@router.get("", response_model=list[Target], summary="The targets registered in a project")
def list_targets(
    project: str = ProjectPath, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> list[Target]:
    """The project's registered targets, by kind then name."""
    caller.require_visible(project)
    with services.db.read() as s:
        proj = accounts.get_project(s, project)
        targets = targets_store.list_targets(s, proj.id, proj.name)
    return [Target.from_record(t) for t in targets]


@router.delete(
    "/{kind}/{name}",
    response_model=TargetDeleted,
    responses=responses(403),
    summary="Delete a target; its non-final jobs are auto-discarded",
)
def delete_target(
    project: str = ProjectPath,
    kind: str = KindPath,
    name: str = NamePath,
    audit: Audit = Depends(audit_trail),
) -> TargetDeleted:
    """Remove the target and auto-discard its project's non-final jobs on it, atomically; 404 if there is none."""
    with audit.attempt("target.delete", f"{project}/{kind}/{name}") as change:
        audit.caller.require_operator(project)
        discarded = audit.services.ops.delete_target(project, kind, name)
        change.details["discarded"] = len(discarded)
    return TargetDeleted(project=project, kind=kind, name=name, discarded=discarded)
