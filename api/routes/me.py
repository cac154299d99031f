"""`GET /api/v1/me`: the caller."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from jobctl.api.auth import Caller, current_user
from jobctl.api.errors import responses
from jobctl.api.schemas import Me

router = APIRouter(tags=["me"], responses=responses(401))


@router.get("/me", response_model=Me, summary="The caller: name, admin flag and project roles")
def me(caller: Caller = Depends(current_user)) -> Me:
    """The authenticated caller as `{name, admin, roles: {project: role}}`."""
    return Me(name=caller.name, admin=caller.admin, roles=dict(caller.roles))
