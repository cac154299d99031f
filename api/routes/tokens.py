"""A user's named tokens (docs/contract.md §9): `/api/v1/users/{name}/tokens` (admins, for anyone) and
`/api/v1/me/tokens` (anyone, for themselves). Every change is recorded in the audit log.

A new token is generated here, answered once with its first characters (`prefix`) and stored only as its
SHA-256. A revoked or expired token is refused from the next request on, on every API process, and the event
streams opened with it end within about a second.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Response, status

from jobctl.api.audit import Audit, audit_trail
from jobctl.api.auth import Caller, current_user, hash_token, new_token, token_prefix
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import TOKEN_NAME, USER_NAME, Token, TokenCreate, TokenCreated
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts
from jobctl.scheduler.store.common import utcnow

users_router = APIRouter(prefix="/users/{name}/tokens", tags=["tokens"], responses=responses(401, 403, 404, 422))
me_router = APIRouter(prefix="/me/tokens", tags=["tokens"], responses=responses(401, 404, 422))

UserName = Path(pattern=USER_NAME, max_length=64, description="the user's name")
TokenName = Path(pattern=TOKEN_NAME, max_length=64, description="the token's name")


# ---------------------------------------------------------------------------------- the three operations


def _create(audit: Audit, user: str, body: TokenCreate, *, admin: bool) -> TokenCreated:
    token = new_token()
    expires = None if body.expires_at is None else body.expires_at.isoformat()
    with audit.change("token.create", f"{user}/{body.name}", {"expires_at": expires}, admin=admin) as change:
        owner = accounts.get_user(change.s, user)
        created = accounts.create_token(
            change.s, owner.id, body.name, hash_token(token), token_prefix(token), body.expires_at
        )
    return TokenCreated(**Token.from_record(created, utcnow()).model_dump(), token=token)


def _list(services: Services, user: str) -> list[Token]:
    with services.db.read() as s:
        tokens = accounts.list_tokens(s, accounts.get_user(s, user).id)
    now = utcnow()
    return [Token.from_record(t, now) for t in tokens]


def _revoke(audit: Audit, user: str, token_name: str, *, admin: bool) -> Response:
    with audit.change("token.revoke", f"{user}/{token_name}", admin=admin) as change:
        accounts.revoke_token(change.s, accounts.get_user(change.s, user).id, token_name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------------------- any user's (admin)


@users_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses=responses(409),
    summary="Give a user another token (admin); the answer holds it, shown once",
)
def create_user_token(body: TokenCreate, name: str = UserName, audit: Audit = Depends(audit_trail)) -> TokenCreated:
    """Create a named token for the user and answer 201 with it, never shown again. 404 if there is no such user;
    409 if they already hold a token of that name; 422 if `expires_at` is not in the future."""
    return _create(audit, name, body, admin=True)


@users_router.get("", response_model=list[Token], summary="A user's tokens (admin): names, never values")
def list_user_tokens(
    name: str = UserName, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> list[Token]:
    """The user's tokens by name, with when each was created, last used and expires. 404 if no such user."""
    caller.require_admin()
    return _list(services, name)


@users_router.delete(
    "/{token_name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke a user's token (admin)",
)
def revoke_user_token(
    name: str = UserName, token_name: str = TokenName, audit: Audit = Depends(audit_trail)
) -> Response:
    """Delete the token: it is refused from the next request on. 404 if the user or the token does not exist."""
    return _revoke(audit, name, token_name, admin=True)


# --------------------------------------------------------------------------------------------- one's own


@me_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses=responses(409),
    summary="Give yourself another token; the answer holds it, shown once",
)
def create_my_token(body: TokenCreate, audit: Audit = Depends(audit_trail)) -> TokenCreated:
    """Create a named token for the caller, with the caller's access, and answer 201 with it, never shown again.
    409 if the caller already holds a token of that name; 422 if `expires_at` is not in the future."""
    return _create(audit, audit.caller.name, body, admin=False)


@me_router.get("", response_model=list[Token], summary="Your tokens: names, never values")
def list_my_tokens(caller: Caller = Depends(current_user), services: Services = Depends(get_services)) -> list[Token]:
    """The caller's tokens by name, with when each was created, last used and expires."""
    return _list(services, caller.name)


@me_router.delete(
    "/{token_name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke one of your tokens",
)
def revoke_my_token(token_name: str = TokenName, audit: Audit = Depends(audit_trail)) -> Response:
    """Delete the caller's token (it may be the one this request came with): refused from the next request on.
    404 if there is no such token."""
    return _revoke(audit, audit.caller.name, token_name, admin=False)
