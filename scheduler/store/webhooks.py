"""Webhooks, their deliveries and the events cursor: every query of the webhook feature (docs/contract.md §4.11).

Three writers, each of its own rows:

- the API creates and deletes webhooks (`create_webhook`, `delete_webhook`); deleting one deletes its deliveries;
- the scheduler's tailer (`scheduler.webhooks.Tailer`) turns events into deliveries and moves the cursor, both in
  one transaction whose update of the cursor is conditional on its `version` (`save_pass`): of two schedulers
  passing at once, one writes and the other's pass changes nothing. A delivery is inserted at most once per
  (event, webhook, job): a second insert of the same is ignored;
- the scheduler's senders claim a due delivery (`claim`: a lease, taken with `FOR UPDATE SKIP LOCKED` on
  PostgreSQL, so each attempt goes out from one process) and record how it went (`record_attempt`), fenced by the
  lease: an attempt whose lease was taken over records nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jobctl.scheduler.errors import NotFound
from jobctl.scheduler.store import accounts, models
from jobctl.scheduler.store.common import connection_of

W = models.Webhook
D = models.WebhookDelivery
C = models.WebhookCursor

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)
CURSOR = "events"  # the name of the cursor's one row


# -- records --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRecord:
    """A webhook as its operators see it: never its secret."""

    id: str
    project: str
    url: str
    statuses: tuple[str, ...]
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery and how sending it went."""

    id: str
    webhook_id: str
    event_id: int
    job_id: str
    action: str
    from_status: str | None
    to_status: str
    actor: str
    event_at: datetime
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Subscription:
    """What the tailer needs of a webhook: which project's events, into which states, from when."""

    id: str
    project_id: int
    statuses: frozenset[str]
    created_at: datetime


@dataclass(frozen=True)
class EventRow:
    """An event with its job's project."""

    id: int
    job_id: str
    project_id: int
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None


@dataclass(frozen=True)
class CursorState:
    """The tailer's position (`models.WebhookCursor`); `gaps` maps an id not seen yet to when it was first missed
    (seconds since the epoch)."""

    high: int
    top_job: str | None
    gaps: dict[int, float]
    version: int


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to create: its id, webhook, event and the body every attempt will send."""

    id: str
    webhook_id: str
    event: EventRow
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one attempt, until `lease_until`, with what sending it needs."""

    id: str
    lease: str
    webhook_id: str
    url: str
    secret: str
    body: str
    attempts: int  # counting this one
    event_at: datetime


# -- the API's: webhooks and their delivery log ---------------------------------------------------------------


def create_webhook(
    session: Session,
    *,
    webhook_id: str,
    project: str,
    url: str,
    statuses: Sequence[str],
    secret: str,
    created_by: str,
    now: datetime,
) -> WebhookRecord:
    """A new webhook of `project` (`NotFound` if there is no such project)."""
    project_id = accounts.get_project(session, project).id
    session.execute(
        insert(W).values(
            id=webhook_id,
            project_id=project_id,
            url=url,
            statuses=list(statuses),
            secret=secret,
            created_at=now,
            created_by=created_by[:64],
        )
    )
    return WebhookRecord(webhook_id, project, url, tuple(statuses), now, created_by[:64])


def list_webhooks(session: Session, project: str) -> list[WebhookRecord]:
    """The project's webhooks, oldest first (`NotFound` if there is no such project)."""
    project_id = accounts.get_project(session, project).id
    rows = session.scalars(select(W).where(W.project_id == project_id).order_by(W.created_at, W.id))
    return [_webhook(row, project) for row in rows]


def get_webhook(session: Session, project: str, webhook_id: str) -> WebhookRecord:
    """The project's webhook `webhook_id`; `NotFound` if the project has none of that id."""
    project_id = accounts.get_project(session, project).id
    row = session.scalar(select(W).where(W.project_id == project_id, W.id == webhook_id))
    if row is None:
        raise NotFound(f"webhook {webhook_id!r} not found in project {project!r}")
    return _webhook(row, project)


def delete_webhook(session: Session, project: str, webhook_id: str) -> WebhookRecord:
    """Delete the webhook with its deliveries, sent or not; `NotFound` if the project has none of that id."""
    webhook = get_webhook(session, project, webhook_id)
    session.execute(delete(D).where(D.webhook_id == webhook_id))  # also where foreign keys are not enforced
    session.execute(delete(W).where(W.id == webhook_id))
    return webhook


def list_deliveries(
    session: Session, webhook_id: str, *, status: str | None = None, offset: int = 0, limit: int = 50
) -> tuple[list[DeliveryRecord], int]:
    """The webhook's deliveries (only those in `status`, if given), newest first; and how many there are."""
    query = select(D).where(D.webhook_id == webhook_id)
    if status is not None:
        query = query.where(D.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(D.created_at.desc(), D.event_id.desc(), D.id).offset(offset).limit(limit))
    return [_delivery(row) for row in rows], total


def _webhook(row: models.Webhook, project: str) -> WebhookRecord:
    return WebhookRecord(row.id, project, row.url, tuple(row.statuses), row.created_at, row.created_by)


def _delivery(row: models.WebhookDelivery) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        job_id=row.job_id,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        actor=row.actor,
        event_at=row.event_at,
        status=row.status,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


# -- the tailer's: from events to deliveries ------------------------------------------------------------------


def read_cursor(conn: Connection) -> CursorState | None:
    """The cursor, or None before `create_cursor` made it."""
    row = conn.execute(select(C.event_id, C.top_job, C.gaps, C.version).where(C.name == CURSOR)).first()
    if row is None:
        return None
    gaps = {int(k): float(v) for k, v in (row.gaps or {}).items()}
    return CursorState(int(row.event_id), row.top_job, gaps, int(row.version))


def create_cursor(conn: Connection) -> None:
    """In the caller's transaction: the cursor before the first event, unless it exists. (The migration that made
    the table put it after the events then: no webhook existed before.)"""
    _insert_ignoring_duplicates(conn, C, [{"name": CURSOR, "event_id": 0, "top_job": None, "gaps": {}, "version": 0}])


def subscriptions(conn: Connection) -> list[Subscription]:
    """Every webhook, as the tailer matches events against it."""
    rows = conn.execute(select(W.id, W.project_id, W.statuses, W.created_at))
    return [Subscription(r.id, r.project_id, frozenset(r.statuses), r.created_at) for r in rows]


_EVENT_COLUMNS = (
    models.Event.id,
    models.Event.job_id,
    models.Job.project_id,
    models.Event.at,
    models.Event.actor,
    models.Event.action,
    models.Event.from_status,
    models.Event.to_status,
)


def events_after(conn: Connection, low: int, limit: int) -> list[EventRow]:
    """The first `limit` events with an id above `low`, by id (events of deleted jobs are gone with them)."""
    query = (
        select(*_EVENT_COLUMNS)
        .join(models.Job, models.Job.id == models.Event.job_id)
        .where(models.Event.id > low)
        .order_by(models.Event.id)
        .limit(limit)
    )
    return [EventRow(*row) for row in conn.execute(query)]


def events_in(conn: Connection, ids: Collection[int]) -> list[EventRow]:
    """The events of these ids that exist (now), by id."""
    found: list[EventRow] = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        query = (
            select(*_EVENT_COLUMNS)
            .join(models.Job, models.Job.id == models.Event.job_id)
            .where(models.Event.id.in_(chunk))
            .order_by(models.Event.id)
        )
        found.extend(EventRow(*row) for row in conn.execute(query))
    return found


def event_job(conn: Connection, event_id: int) -> str | None:
    """The job of event `event_id`, or None if there is no such event (any more)."""
    return conn.scalar(select(models.Event.job_id).where(models.Event.id == event_id))


def last_event(conn: Connection) -> tuple[int, str] | None:
    """The id and job of the newest event, if any."""
    row = conn.execute(select(models.Event.id, models.Event.job_id).order_by(models.Event.id.desc()).limit(1)).first()
    return None if row is None else (int(row.id), str(row.job_id))


def known_deliveries(conn: Connection, event_ids: Collection[int]) -> set[tuple[int, str, str]]:
    """(event id, webhook id, job id) of the deliveries made already for any of these events."""
    known: set[tuple[int, str, str]] = set()
    ordered = sorted(event_ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        rows = conn.execute(select(D.event_id, D.webhook_id, D.job_id).where(D.event_id.in_(chunk)))
        known.update((int(r.event_id), r.webhook_id, r.job_id) for r in rows)
    return known


def save_pass(conn: Connection, before: CursorState, after: CursorState, deliveries: Iterable[NewDelivery]) -> bool:
    """In the caller's transaction: move the cursor from `before` to `after` and create the deliveries, or, if
    another pass moved it since `before` was read, do neither and return False."""
    moved = conn.execute(
        update(C)
        .where(C.name == CURSOR, C.version == before.version)
        .values(
            event_id=after.high,
            top_job=after.top_job,
            gaps={str(k): v for k, v in after.gaps.items()},
            version=before.version + 1,
        )
    ).rowcount
    if moved != 1:
        return False
    rows = [_delivery_row(d) for d in deliveries]
    if rows:
        _insert_ignoring_duplicates(conn, D, rows)
    return True


def _delivery_row(new: NewDelivery) -> dict[str, Any]:
    event = new.event
    return {
        "id": new.id,
        "webhook_id": new.webhook_id,
        "event_id": event.id,
        "job_id": event.job_id,
        "action": event.action[:16],
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor": event.actor[:64],
        "event_at": event.at,
        "body": new.body,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": new.created_at,  # due at once
        "lease": None,
        "last_status": None,
        "last_error": None,
        "created_at": new.created_at,
        "delivered_at": None,
    }


def _insert_ignoring_duplicates(conn: Connection, table: type[models.Base], rows: list[dict[str, Any]]) -> None:
    """Insert the rows; one that would break a unique constraint is left out (it is there already)."""
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
    else:
        conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)


# -- the senders': claiming, recording, purging ---------------------------------------------------------------


def due_webhooks(conn: Connection, now: datetime, exclude: Collection[str], limit: int) -> list[str]:
    """Up to `limit` webhooks with a delivery due at `now`, but those in `exclude`, the longest-waiting first."""
    first_due = func.min(D.next_attempt_at)
    query = select(D.webhook_id).where(D.status == PENDING, D.next_attempt_at <= now)
    if exclude:
        query = query.where(D.webhook_id.not_in(list(exclude)))
    query = query.group_by(D.webhook_id).order_by(first_due).limit(limit)
    return [str(webhook_id) for webhook_id in conn.scalars(query)]


def claim(conn: Connection, webhook_id: str, now: datetime, lease: str, lease_until: datetime) -> Claimed | None:
    """In the caller's (write) transaction: the webhook's longest-due delivery, claimed under `lease` until
    `lease_until` and counted as an attempt; None if it has none due (or another process holds them)."""
    due = conn.scalar(
        select(D.id)
        .where(D.webhook_id == webhook_id, D.status == PENDING, D.next_attempt_at <= now)
        .order_by(D.next_attempt_at, D.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if due is None:
        return None
    conn.execute(update(D).where(D.id == due).values(attempts=D.attempts + 1, lease=lease, next_attempt_at=lease_until))
    row = conn.execute(
        select(D.id, D.webhook_id, W.url, W.secret, D.body, D.attempts, D.event_at)
        .join(W, W.id == D.webhook_id)
        .where(D.id == due)
    ).one()
    return Claimed(row.id, lease, row.webhook_id, row.url, row.secret, row.body, int(row.attempts), row.event_at)


def record_attempt(
    conn: Connection,
    claimed: Claimed,
    *,
    now: datetime,
    http_status: int | None,
    error: str | None,
    retry_at: datetime | None,
) -> bool:
    """Record the claimed attempt's outcome: delivered when `error` is None; else failed for good when `retry_at`
    is None, or due again at `retry_at`. Nothing if the lease is no longer `claimed.lease` (taken over, or the
    webhook deleted); returns whether it was recorded."""
    if error is None:
        values: dict[str, Any] = {"status": DELIVERED, "delivered_at": now, "next_attempt_at": None}
    elif retry_at is None:
        values = {"status": FAILED, "next_attempt_at": None}
    else:
        values = {"next_attempt_at": retry_at}
    values.update(lease=None, last_status=http_status, last_error=None if error is None else error[:2000])
    changed = conn.execute(
        update(D).where(D.id == claimed.id, D.lease == claimed.lease, D.status == PENDING).values(**values)
    ).rowcount
    return changed == 1


def purge_deliveries(session: Session | Connection, before: datetime, limit: int = 1000) -> int:
    """Delete up to `limit` delivered or failed deliveries created before `before`. Returns how many."""
    conn = connection_of(session)
    ids = list(conn.scalars(select(D.id).where(D.status != PENDING, D.created_at < before).limit(limit)))
    if ids:
        conn.execute(delete(D).where(D.id.in_(ids)))
    return len(ids)
