"""From events to deliveries: the tailer reads the `events` table by id and creates one delivery per (webhook,
event) that matches (docs/contract.md §4.11).

Promises:

- **Every matching event gets its delivery**, durably, before anything is sent: a delivery is created in the
  same transaction that moves the cursor past its event, so a crash loses neither (the next pass starts from the
  cursor). An event matches a webhook of its job's project when it brings the job into one of the webhook's
  statuses (its `to` is one of them and differs from its `from`) and happened at or after the webhook's creation.
- **Once**: a delivery is known by (event, webhook, job), and a second insert of one is ignored, so a pass that
  reads an event again (after a crash, or two schedulers at once) creates nothing new.
- **Late commits are caught.** On PostgreSQL an event's id is taken when it is written, so a transaction may
  commit after one that took a later id. An id the tailer has passed without seeing it is a *gap*, looked for
  again on every pass for `GAP_GRACE_S`; ids that never show up (rolled back, or their job deleted) are dropped
  then. Only the `GAP_SPAN` ids below the newest one a pass read are tracked.
- **Reused ids are caught.** SQLite gives a new row the id after the highest one left, so deleting the newest
  jobs' events gives their ids to the next events. The cursor remembers the job of its newest event; when that
  event is gone or another job's, the pass reads the `REUSE_WINDOW` ids below it again.
- **Nothing in a job's transition waits for it**: the tailer only reads the events after they committed, on its
  own thread of the scheduler process, and writes its own rows.
- **The job in a delivery** is the job as the API showed it when the delivery was made (moments after the
  event): its status may already be past the event's `to`. An event whose job was deleted before the pass is
  gone with it and delivered to nobody.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobctl.scheduler.errors import NotFound
from jobctl.scheduler.records import JobRecord
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.scheduler.store import webhooks as store
from jobctl.scheduler.store.common import utcnow
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.store.webhooks import CursorState, EventRow, NewDelivery, Subscription

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger(__name__)

#: The JSON of a job, as the API shows it (`jobctl.api.webhook_schemas.job_json`).
RenderJob = Callable[[JobRecord], dict[str, Any]]

BATCH = 1000  # events read per pass; a full batch makes the loop go again at once
GAP_GRACE_S = 120.0  # how long an id passed unseen is looked for
GAP_SPAN = 10_000  # only ids this close below the newest one read can be gaps
MAX_GAPS = 10_000  # the most gaps kept (the lowest go first)
REUSE_WINDOW = 1000  # ids read again when the cursor's newest event was deleted
IDLE_SAVE_S = 10.0  # without webhooks, the cursor follows the newest event this often


def payload(delivery_id: str, event: EventRow, job: dict[str, Any]) -> str:
    """The body of a delivery: `{delivery_id, event: {action, from, to, at, actor}, job}` as compact JSON."""
    return json.dumps(
        {
            "delivery_id": delivery_id,
            "event": {
                "action": event.action,
                "from": event.from_status,
                "to": event.to_status,
                "at": iso(event.at),
                "actor": event.actor,
            },
            "job": job,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def iso(at: datetime) -> str:
    """A UTC time as the API writes it: ISO-8601 with `Z`."""
    return at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class _Read:
    rows: list[EventRow]  # events above the pass's low mark, by id
    late: list[EventRow]  # gaps that showed up
    suspect: bool  # the cursor's newest event is gone or another job's: ids may have been reused
    last: tuple[int, str] | None  # the newest event, when the pass read none above its low mark


class Tailer:
    """Turns events into deliveries, one pass at a time (`run_pass`), from the cursor row (`webhook_cursor`)."""

    def __init__(self, db: Database, render: RenderJob, *, batch: int = BATCH) -> None:
        self.db = db
        self.render = render
        self.batch = batch
        self._idle_saved = 0.0

    def run_pass(self) -> bool:
        """Read the events after the cursor (and the gaps), create the deliveries they call for and move the
        cursor, in one transaction. Returns True if the pass read a full batch (more events are waiting)."""
        now = time.time()
        if not self.db.query(store.subscriptions):
            self._idle(now)
            return False
        state = self._cursor()
        read = self.db.query(lambda conn: self._read(conn, state))
        # Read after the events: a webhook whose creation was answered before an event was written is seen.
        subscribed = self.db.query(store.subscriptions)
        after = self._advance(state, read, now)
        seen = {e.id: e for e in (*read.rows, *read.late)}
        deliveries = self.db.query(lambda conn: self._deliveries(conn, list(seen.values()), subscribed))
        if after != state or deliveries:
            saved = self.db.transact(lambda conn: store.save_pass(conn, state, after, deliveries))
            if saved and deliveries:
                log.info("webhooks: %d new deliveries (events up to %d)", len(deliveries), after.high)
        return len(read.rows) >= self.batch

    def _cursor(self) -> CursorState:
        state = self.db.query(store.read_cursor)
        if state is None:
            self.db.transact(store.create_cursor)
            state = self.db.query(store.read_cursor)
            assert state is not None
        return state

    def _idle(self, now: float) -> None:
        """No webhook exists: keep the cursor near the newest event (a first webhook has no backlog to read),
        written at most every `IDLE_SAVE_S`."""
        if now - self._idle_saved < IDLE_SAVE_S:
            return
        self._idle_saved = now
        state = self._cursor()
        last = self.db.query(store.last_event)
        if self.db.query(store.subscriptions):  # created meanwhile: the next pass reads from the cursor
            return
        high, top = last if last else (0, None)
        if (high, top) != (state.high, state.top_job) or state.gaps:
            after = CursorState(high, top, {}, state.version)
            self.db.transact(lambda conn: store.save_pass(conn, state, after, ()))

    def _read(self, conn: Connection, state: CursorState) -> _Read:
        suspect = state.high > 0 and store.event_job(conn, state.high) != state.top_job
        low = max(0, state.high - REUSE_WINDOW) if suspect else state.high
        rows = store.events_after(conn, low, self.batch)
        late = store.events_in(conn, list(state.gaps)) if state.gaps else []
        last = store.last_event(conn) if suspect and not rows else None
        return _Read(rows, late, suspect, last)

    def _advance(self, state: CursorState, read: _Read, now: float) -> CursorState:
        """The cursor after the pass: its newest event, and the gaps still worth looking for."""
        high: int
        top: str | None
        if read.rows:  # above the cursor, or from below it when suspect: the newest read is the cursor's next
            high, top = read.rows[-1].id, read.rows[-1].job_id
        elif read.suspect:
            high, top = read.last if read.last else (0, None)
        else:
            high, top = state.high, state.top_job
        gaps = dict(state.gaps)
        for event in read.late:
            gaps.pop(event.id, None)
        if high > state.high:
            got = {e.id for e in read.rows}
            for missing in range(max(state.high + 1, high - GAP_SPAN), high):
                if missing not in got:
                    gaps.setdefault(missing, now)
        gaps = {k: v for k, v in gaps.items() if now - v < GAP_GRACE_S and k <= high}
        if len(gaps) > MAX_GAPS:
            gaps = dict(sorted(gaps.items())[-MAX_GAPS:])
        return CursorState(high, top, gaps, state.version)

    def _deliveries(
        self, conn: Connection, events: list[EventRow], subscribed: list[Subscription]
    ) -> list[NewDelivery]:
        """The deliveries the events call for that do not exist yet, each with its body."""
        by_project: dict[int, list[Subscription]] = {}
        for sub in subscribed:
            by_project.setdefault(sub.project_id, []).append(sub)
        pairs = [
            (event, sub)
            for event in events
            if event.to_status is not None and event.to_status != event.from_status
            for sub in by_project.get(event.project_id, ())
            if event.to_status in sub.statuses and event.at >= sub.created_at
        ]
        if not pairs:
            return []
        known = store.known_deliveries(conn, {event.id for event, _ in pairs})
        jobs: dict[str, dict[str, Any] | None] = {}
        made: list[NewDelivery] = []
        now = utcnow()
        for event, sub in pairs:
            if (event.id, sub.id, event.job_id) in known:
                continue
            if event.job_id not in jobs:
                jobs[event.job_id] = self._job(conn, event.job_id)
            job = jobs[event.job_id]
            if job is None:
                continue  # deleted since: its events are gone too
            delivery_id = uuid.uuid4().hex
            made.append(NewDelivery(delivery_id, sub.id, event, payload(delivery_id, event, job), now))
        return made

    def _job(self, conn: Connection, job_id: str) -> dict[str, Any] | None:
        try:
            return self.render(jobs_store.get_job(conn, job_id))
        except NotFound:
            return None
