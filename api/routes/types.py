"""`/api/v1/types`: the job types this server knows, with their params' JSON Schema and their steps."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import JobTypeInfo, StepInfo
from jobctl.scheduler.services import JobTypeInfo as JobType
from jobctl.scheduler.services import Services
from jobctl.workers.registry import ANY_TARGET

router = APIRouter(prefix="/types", tags=["types"], responses=responses(401))


@router.get("", response_model=list[JobTypeInfo], summary="List the job types")
def list_types(caller: Caller = Depends(current_user), services: Services = Depends(get_services)) -> list[JobTypeInfo]:
    """Every registered job type, by name: its params' JSON Schema, its declared steps (null when they are
    planned from the params), the target kind every job needs (`"any"`: a target of any kind is optional; null:
    the type takes none) and its exclusivity (`"target"` or null). Any authenticated caller may read it."""
    return [describe(jt) for jt in sorted(services.registry.types(), key=lambda t: t.name)]


def describe(jt: JobType) -> JobTypeInfo:
    """The job type as `GET /api/v1/types` lists it (also what a job's diagnostic bundle holds of its type)."""
    steps = jt.step_list()
    return JobTypeInfo(
        name=jt.name,
        params_schema=jt.params.model_json_schema(),
        steps=None if steps is None else [StepInfo(name=s.name, weight=s.weight) for s in steps],
        target_kind=jt.target_kind or (ANY_TARGET if jt.target_allowed else None),
        exclusive=jt.exclusive,
    )
