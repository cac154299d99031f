"""`/api/v1/users`: create users, list them and grant or revoke their project roles (admins only, docs/contract.md §3).

A new user's token is generated here, answered once and stored only as its SHA-256.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, status
from sqlalchemy.exc import IntegrityError

from jobctl.api.auth import Caller, current_user, hash_token, new_token
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import USER_NAME, RolesUpdate, User, UserCreate, UserCreated
from jobctl.scheduler.errors import Conflict
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts

router = APIRouter(prefix="/users", tags=["users"], responses=responses(401, 403, 422))

UserName = Path(pattern=USER_NAME, max_length=64, description="the user's name")


@router.post(
    "",
    response_model=UserCreated,
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
    summary="Create a user (admin); the answer holds its token, shown only this once",
)
def create_user(
    body: UserCreate, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> UserCreated:
    """Create the user with its roles and answer 201 with a newly generated token, which is never shown again.

    403 unless the caller is an admin; 409 if the name is taken; 422 if a project in `roles` does not exist
    (and then no user is created)."""
    caller.require_admin()
    token = new_token()
    try:
        with services.db.write() as s:
            user_id = accounts.create_user(s, body.name, hash_token(token), admin=body.admin)
            accounts.set_roles(s, user_id, {project: role.value for project, role in body.roles.items()})
            user = accounts.get_user(s, body.name)
    except IntegrityError as exc:  # the same name created at the same moment by another request
        raise Conflict(f"user {body.name!r} already exists") from exc
    return UserCreated(**User.from_record(user).model_dump(), token=token)


@router.get("", response_model=list[User], summary="Every user with their roles (admin); never their tokens")
def list_users(caller: Caller = Depends(current_user), services: Services = Depends(get_services)) -> list[User]:
    """Every user, by name; 403 unless the caller is an admin."""
    caller.require_admin()
    with services.db.read() as s:
        users = accounts.list_users(s)
    return [User.from_record(u) for u in users]


@router.put(
    "/{name}/roles",
    response_model=User,
    responses=responses(404),
    summary="Grant or revoke a user's project roles (admin)",
)
def set_roles(
    body: RolesUpdate,
    name: str = UserName,
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
) -> User:
    """Give the user the role named for each project, or take it away where it is null; other projects are left
    as they are. Answers the user as it is now. 404 if there is no such user; 422 (nothing changed) if a project
    does not exist. Takes effect on the user's next request."""
    caller.require_admin()
    with services.db.write() as s:
        user = accounts.get_user(s, name)
        accounts.set_roles(s, user.id, {p: None if r is None else r.value for p, r in body.root.items()})
        user = accounts.get_user(s, name)
    return User.from_record(user)
