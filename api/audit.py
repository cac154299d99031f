"""Recording changes in the audit log (docs/security.md, "Audit log").

Routes that change users, roles, tokens, projects or targets, or run a batch, take an `Audit` (the dependency
`audit_trail`) and make their change inside one of its two blocks:

- `change(action, subject, details)` opens the write transaction the change is made in and adds the entry to
  that same transaction: a change that commits is always recorded, and an entry never claims a change that
  was rolled back;
- `attempt(action, subject, details)` is for a change that commits on its own (through `Operations`): the entry
  is written right after it.

Either way a refusal (403, 404, 409, 422 raised inside the block) is recorded too, with the error's code as the
outcome, in a transaction of its own, and then raised on. Entries name the caller, the client's address (as the
server sees it), the action, its subject and small details; the caller decides the details and never passes a
secret (a token's value, hash or prefix).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.scheduler.errors import Conflict, JobctlError
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import audit
from jobctl.scheduler.store.common import utcnow

OK = "ok"


@dataclass
class Change:
    """The block's view of its change: the write session (`change` only) and details it may add to the entry."""

    session: Session | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def s(self) -> Session:
        """The write session of a `change` block."""
        assert self.session is not None, "only `Audit.change` opens a session"
        return self.session


@dataclass(frozen=True)
class Audit:
    """The audit trail of one request: who is calling, from where, over which services."""

    services: Services
    caller: Caller
    address: str | None

    @contextmanager
    def change(
        self,
        action: str,
        subject: str,
        details: dict[str, Any] | None = None,
        *,
        admin: bool = True,
        conflict: str | None = None,
    ) -> Iterator[Change]:
        """A write transaction for the change, recorded in it as `ok` when the block ends. With `admin` (the
        default) only administrators may make it: anyone else gets 403, recorded as `forbidden`.

        A unique or foreign key the database refuses (another request made a conflicting change at the same
        moment) rolls the change back and raises `Conflict` (409) with the message `conflict`, recorded as
        `conflict`: never a 500, and never an unrecorded refusal."""
        change = Change(session=None, details=dict(details or {}))
        try:
            with self.services.db.write() as s:
                change.session = s
                if admin:
                    self.caller.require_admin()
                yield change
                self._add(s, action, subject, OK, change.details)
        except IntegrityError as exc:
            refusal = Conflict(conflict or f"{action} {subject!r}: a concurrent change came first; try again")
            self._refused(action, subject, refusal, change.details)
            raise refusal from exc
        except JobctlError as exc:
            self._refused(action, subject, exc, change.details)
            raise

    @contextmanager
    def attempt(self, action: str, subject: str, details: dict[str, Any] | None = None) -> Iterator[Change]:
        """A change the block commits itself; recorded as `ok` right after, or with the refusal's code."""
        change = Change(session=None, details=dict(details or {}))
        try:
            yield change
        except JobctlError as exc:
            self._refused(action, subject, exc, change.details)
            raise
        with self.services.db.write() as s:
            self._add(s, action, subject, OK, change.details)

    def _refused(self, action: str, subject: str, exc: JobctlError, details: dict[str, Any]) -> None:
        with self.services.db.write() as s:
            self._add(s, action, subject, exc.code, {**details, "error": exc.message})

    def _add(self, s: Session, action: str, subject: str, outcome: str, details: dict[str, Any]) -> None:
        audit.record(
            s,
            at=utcnow(),
            actor=self.caller.name,
            action=action,
            subject=subject,
            address=self.address,
            outcome=outcome,
            details=details,
        )


async def audit_trail(
    request: Request, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Audit:
    """The request's `Audit`: its authenticated caller and the client's address."""
    return Audit(services=services, caller=caller, address=request.client.host if request.client else None)
