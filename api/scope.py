"""What a job query covers, shared by the routes that filter jobs like the list (`GET /jobs`, batches by filter,
`GET /stats`): the creation window of `period` or `since`/`until`, and the projects the caller asked for and may
see (docs/contract.md §4.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from jobctl.api.auth import Caller
from jobctl.api.schemas import Period
from jobctl.scheduler.errors import Invalid, NotFound
from jobctl.scheduler.store import accounts

PERIODS: dict[Period, timedelta | None] = {
    Period.DAY: timedelta(days=1),
    Period.WEEK: timedelta(days=7),
    Period.MONTH: timedelta(days=30),
    Period.YEAR: timedelta(days=365),
    Period.ALL: None,
}


def window(
    period: Period | None, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The [since, until) creation window the query asks for, in aware UTC."""
    since = aware(since, "since")
    until = aware(until, "until")
    span = PERIODS[period] if period else None
    if span is not None:
        if since or until:
            raise Invalid("give either period or since/until, not both")
        since = datetime.now(UTC) - span
    if since and until and since > until:
        raise Invalid("since must not be after until")
    return since, until


def aware(value: datetime | None, name: str) -> datetime | None:
    """`value` in aware UTC (naive means UTC already); `Invalid` if UTC cannot express it (beyond years 1-9999)."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{name} is out of range once converted to UTC (years 1-9999)") from None


def project_ids(s: Session, caller: Caller, names: list[str] | None) -> list[int] | None:
    """Ids of the projects to list (None: all, for an admin without a filter); 404 for an invisible one."""
    if names:
        wanted = sorted(set(names))
        for name in wanted:
            caller.require_visible(name)
        found = accounts.project_ids(s, wanted)
        for name in wanted:
            if name not in found:
                raise NotFound(f"project {name!r} not found")
        return list(found.values())
    visible = caller.visible_projects()
    if visible is None:
        return None
    return list(accounts.project_ids(s, visible).values())
