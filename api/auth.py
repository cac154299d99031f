"""Who is calling, and what they may see and do (docs/contract.md §3).

Requests carry `Authorization: Bearer <token>`; the database holds only the token's SHA-256. An admin sees
and operates every project. Anyone else sees the projects they hold a role in (`viewer`: read; `operator`:
read, submit, operate); any other project does not exist for them (404).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from jobctl.api.deps import get_services
from jobctl.scheduler.errors import Forbidden, NotFound, Unauthorized
from jobctl.scheduler.records import UserRecord
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts

VIEWER = "viewer"
OPERATOR = "operator"

_bearer = HTTPBearer(auto_error=False, description="the token given when the user was created")


def hash_token(token: str) -> str:
    """The form a token is stored and looked up in: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh bearer token (256 random bits, URL-safe). Store only `hash_token` of it; show it once."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request."""

    name: str
    admin: bool
    roles: dict[str, str] = field(default_factory=dict)

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


CALLER_TTL_S = 1.0


class Callers:
    """Who holds a token, remembered for `ttl` seconds per token hash: most requests then read no account.

    Promise: a change of users or roles made through this process takes effect on its next request (the
    routes that make one call `forget()`); one made elsewhere (another API process, the database) within
    `ttl` seconds. Unknown tokens are never remembered: each one is looked up."""

    def __init__(self, ttl: float = CALLER_TTL_S) -> None:
        self.ttl = ttl
        self._known: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> Caller | None:
        """The remembered caller of `token_hash`, if it was looked up less than `ttl` seconds ago."""
        entry = self._known.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def remember(self, token_hash: str, caller: Caller) -> None:
        with self._lock:
            if len(self._known) > 10_000:  # many tokens in one second: start over rather than grow
                self._known.clear()
            self._known[token_hash] = (time.monotonic() + self.ttl, caller)

    def forget(self) -> None:
        """Drop every remembered caller (after a change of users or roles)."""
        with self._lock:
            self._known.clear()


async def callers(request: Request) -> Callers:
    """The app's `Callers` (set on `app.state.callers` by `create_app`); `async` for the reason in `deps`."""
    known: Callers = request.app.state.callers
    return known


def _user_by_token_hash(services: Services, token_hash: str) -> UserRecord | None:
    with services.db.read() as s:
        return accounts.user_by_token_hash(s, token_hash)


async def current_user(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    services: Services = Depends(get_services),
    known: Callers = Depends(callers),
) -> Caller:
    """The caller named by the request's bearer token; `Unauthorized` (401) if it is missing or unknown.

    A remembered caller is answered on the event loop; only a lookup goes to the thread pool."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    token_hash = hash_token(credentials.credentials)
    caller = known.get(token_hash)
    if caller is not None:
        return caller
    user = await run_in_threadpool(_user_by_token_hash, services, token_hash)
    if user is None:
        raise Unauthorized("invalid token")
    caller = Caller(name=user.name, admin=user.admin, roles=user.roles)
    known.remember(token_hash, caller)
    return caller
