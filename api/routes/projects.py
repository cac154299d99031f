"""`/api/v1/projects`: create, change and delete projects (admin, recorded in the audit log) and list the
projects visible to the caller."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Response, status

from jobctl.api.audit import Audit, audit_trail
from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import PROJECT_NAME, Project, ProjectCreate, ProjectUpdate
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts

router = APIRouter(prefix="/projects", tags=["projects"], responses=responses(401, 422))


@router.post(
    "",
    response_model=Project,
    status_code=status.HTTP_201_CREATED,
    responses=responses(403, 409, 422),
    summary="Create a project (admin)",
)
def create_project(body: ProjectCreate, audit: Audit = Depends(audit_trail)) -> Project:
    """Create the project; 403 unless the caller is an admin, 409 if the name is taken."""
    with audit.change("project.create", body.name, {"max_running": body.max_running}) as change:
        project = accounts.create_project(change.s, body.name, body.max_running)
    return Project.from_record(project)


ProjectName = Path(pattern=PROJECT_NAME, max_length=64, description="the project's name")


@router.patch(
    "/{project}",
    response_model=Project,
    responses=responses(403, 404),
    summary="Change a project's limit of RUNNING jobs (admin)",
)
def update_project(body: ProjectUpdate, project: str = ProjectName, audit: Audit = Depends(audit_trail)) -> Project:
    """Set `max_running` (null: the default, `JOBCTL_PROJECT_MAX_RUNNING`); the scheduler applies it on its next
    pass. Jobs already RUNNING beyond a lowered limit run on. 404 if there is no such project."""
    with audit.change("project.update", project, {"max_running": body.max_running}) as change:
        updated = accounts.update_project(change.s, project, body.max_running)
    return Project.from_record(updated)


@router.delete(
    "/{project}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(403, 404, 409),
    summary="Delete a project with its final jobs, targets and roles (admin)",
)
def delete_project(project: str = ProjectName, audit: Audit = Depends(audit_trail)) -> Response:
    """Delete the project, its jobs (every one final), their history and logs, its targets and the roles in it.
    409 (nothing deleted) while it holds a job that is not final: discard those first. 404 if no such project."""
    with audit.change("project.delete", project) as change:
        accounts.delete_project(change.s, project)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=list[Project], summary="The projects visible to the caller")
def list_projects(caller: Caller = Depends(current_user), services: Services = Depends(get_services)) -> list[Project]:
    """Every project for an admin; for anyone else the projects they hold a role in, by name."""
    with services.db.read() as s:
        projects = accounts.list_projects(s, caller.visible_projects())
    return [Project.from_record(p) for p in projects]
