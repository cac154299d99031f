"""`/api/v1/projects`: create (admin) and list the projects visible to the caller."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import Project, ProjectCreate
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
def create_project(
    body: ProjectCreate, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Project:
    """Create the project; 403 unless the caller is an admin, 409 if the name is taken."""
    caller.require_admin()
    with services.db.write() as s:
        project = accounts.create_project(s, body.name, body.max_running)
    return Project.from_record(project)


@router.get("", response_model=list[Project], summary="The projects visible to the caller")
def list_projects(caller: Caller = Depends(current_user), services: Services = Depends(get_services)) -> list[Project]:
    """Every project for an admin; for anyone else the projects they hold a role in, by name."""
    with services.db.read() as s:
        projects = accounts.list_projects(s, caller.visible_projects())
    return [Project.from_record(p) for p in projects]
