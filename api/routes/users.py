"""`/api/v1/users`: create, list, change and delete users and set their project roles (admins only,
docs/contract.md §3 and §9). Every change is recorded in the audit log (`jobctl.api.audit`).

A new user's token (named `default`) is generated here, answered once and stored only as its SHA-256. More
tokens: `jobctl.api.routes.tokens`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Response, status

from jobctl.api.audit import Audit, audit_trail
from jobctl.api.auth import Caller, current_user, hash_token, new_token, token_prefix
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import USER_NAME, RolesUpdate, User, UserCreate, UserCreated, UserUpdate
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
def create_user(body: UserCreate, audit: Audit = Depends(audit_trail)) -> UserCreated:
    """Create the user with its roles and answer 201 with a newly generated token (named `default`), which is
    never shown again.

    403 unless the caller is an admin; 409 if the name is taken; 422 if a project in `roles` does not exist
    (and then no user is created)."""
    token = new_token()
    details = {"admin": body.admin, "roles": {p: r.value for p, r in body.roles.items()}}
    # a conflict: the same name created at the same moment by another request
    with audit.change("user.create", body.name, details, conflict=f"user {body.name!r} already exists") as change:
        s = change.s
        token_hash, prefix = hash_token(token), token_prefix(token)
        user_id = accounts.create_user(s, body.name, token_hash, admin=body.admin, prefix=prefix)
        accounts.set_roles(s, user_id, {project: role.value for project, role in body.roles.items()})
        user = accounts.get_user(s, body.name)
    return UserCreated(**User.from_record(user).model_dump(), token=token)


@router.get("", response_model=list[User], summary="Every user with their roles (admin); never their tokens")
def list_users(caller: Caller = Depends(current_user), services: Services = Depends(get_services)) -> list[User]:
    """Every user, by name; 403 unless the caller is an admin."""
    caller.require_admin()
    with services.db.read() as s:
        users = accounts.list_users(s)
    return [User.from_record(u) for u in users]


@router.patch(
    "/{name}",
    response_model=User,
    responses=responses(404, 409),
    summary="Disable or enable a user, or give or take the admin flag (admin)",
)
def update_user(body: UserUpdate, name: str = UserName, audit: Audit = Depends(audit_trail)) -> User:
    """Change the fields given; answer the user as it is now. A disabled user's every token is refused from the
    next request on, on every API process, and their open event streams end within about a second.

    404 if there is no such user; 409 (nothing changed) if no enabled administrator would be left."""
    with audit.change("user.update", name, body.model_dump(exclude_none=True)) as change:
        user = accounts.update_user(change.s, name, disabled=body.disabled, admin=body.admin)
    return User.from_record(user)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(404, 409),
    summary="Delete a user with their tokens and roles (admin)",
)
def delete_user(name: str = UserName, audit: Audit = Depends(audit_trail)) -> Response:
    """Delete the user; their jobs keep their name as the submitter. 404 if there is no such user; 409 (nothing
    deleted) if they are the last enabled administrator."""
    with audit.change("user.delete", name) as change:
        accounts.delete_user(change.s, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{name}/roles",
    response_model=User,
    responses=responses(404),
    summary="Grant or revoke a user's project roles (admin)",
)
def set_roles(body: RolesUpdate, name: str = UserName, audit: Audit = Depends(audit_trail)) -> User:
    """Give the user the role named for each project, or take it away where it is null; other projects are left
    as they are. Answers the user as it is now. 404 if there is no such user; 422 (nothing changed) if a project
    does not exist. Takes effect on the user's next request; their open event streams end within about a
    second."""
    wanted = {p: None if r is None else r.value for p, r in body.root.items()}
    with audit.change("user.roles", name, {"roles": wanted}) as change:
        user = accounts.get_user(change.s, name)
        accounts.set_roles(change.s, user.id, wanted)
        user = accounts.get_user(change.s, name)
    return User.from_record(user)
