"""Who is calling, and what they may see and do (docs/contract.md §3).

Requests carry `Authorization: Bearer <token>`; the database holds only the token's SHA-256. An admin sees
and operates every project. Anyone else sees the projects they hold a role in (`viewer`: read; `operator`:
read, submit, operate); any other project does not exist for them (404).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jobctl.api import ratelimit
from jobctl.api.deps import get_services
from jobctl.scheduler.errors import Forbidden, NotFound, Unauthorized
from jobctl.scheduler.records import UserRecord
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts
from jobctl.scheduler.store.common import utcnow

VIEWER = "viewer"
OPERATOR = "operator"

_bearer = HTTPBearer(auto_error=False, description="the token given when the user was created")


def hash_token(token: str) -> str:
    """The form a token is stored and looked up in: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh bearer token (256 random bits, URL-safe). Store only `hash_token` of it; show it once."""
    return secrets.token_urlsafe(32)


PREFIX_LENGTH = 8


def token_prefix(token: str) -> str:
    """The first characters of a token, kept in clear to tell it by in lists (8 of a new token's 43)."""
    return token[:PREFIX_LENGTH]


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request."""

    name: str
    admin: bool
    roles: dict[str, str] = field(default_factory=dict)
    key: str = ""  # the hash of the token the request came with: what later checks of this caller look up

    @classmethod
    def of(cls, user: UserRecord, key: str) -> Caller:
        """The caller `user` is, signed in with the token whose hash is `key`."""
        return cls(name=user.name, admin=user.admin, roles=user.roles, key=key)

    def can_see(self, project: str) -> bool:
        """True if the project exists for this caller: admins see all, others those they hold a role in."""
        return self.admin or project in self.roles

    def can_operate(self, project: str) -> bool:
        """True if the caller may submit, operate jobs and change targets in `project`."""
        return self.admin or self.roles.get(project) == OPERATOR

    def visible_projects(self) -> list[str] | None:
        """The projects this caller may see; None means every project (admin)."""
        return None if self.admin else sorted(self.roles)

    def require_visible(self, project: str, what: str | None = None) -> None:
        """Raise `NotFound` (as if `what`, default the project, did not exist) unless the caller sees `project`."""
        if not self.can_see(project):
            raise NotFound(f"{what or f'project {project!r}'} not found")

    def require_operator(self, project: str, what: str | None = None) -> None:
        """Raise `NotFound` if the caller cannot see `project`, `Forbidden` if they may only read it."""
        self.require_visible(project, what)
        if not self.can_operate(project):
            raise Forbidden(f"you need the operator role in project {project!r}")

    def require_admin(self) -> None:
        """Raise `Forbidden` unless the caller is an admin."""
        if not self.admin:
            raise Forbidden("only administrators may do this")


def current_user(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    services: Services = Depends(get_services),
) -> Caller:
    """The caller named by the request's bearer token; `Unauthorized` (401) if it is missing or unknown, or
    `TooManyRequests` (429) if it is unknown and its address has sent too many unknown ones (api.ratelimit)."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    token_hash = hash_token(credentials.credentials)
    signed_in = services.db.query(lambda conn: accounts.sign_in(conn, token_hash))
    if signed_in is None:
        ratelimit.refuse_if_throttled(services.redis, services.settings, ratelimit.address_of(request))
        raise Unauthorized("invalid token: unknown, revoked or expired, or its user is disabled")
    now = utcnow()
    if accounts.needs_use(signed_in, now):  # at most once a minute per token: most requests write nothing
        services.db.transact(lambda conn: accounts.record_use(conn, signed_in.token_id, now))
    return Caller.of(signed_in.user, token_hash)
