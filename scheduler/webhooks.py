"""Webhooks in the scheduler process (docs/contract.md §4.11): the `Deliverer` runs beside the scheduler's loop,
on threads of its own, and never in a job's transition.

One thread, once a tick (`JOBCTL_SCHEDULER_TICK_S`) or sooner when a sender is free:

1. the tailer (`webhook_tail.Tailer`) turns the events committed since its last pass into deliveries - durably,
   before any is sent, one per (webhook, event) however often it reads the event;
2. the sender (`webhook_send.Sender`) claims the deliveries that are due, at most one per webhook and no more
   than it has threads, and its threads POST them and record how it went;
3. every ten minutes, delivered and failed deliveries older than `JOBCTL_RETENTION_DAYS` are deleted.

Several schedulers on one PostgreSQL database share the work: the tailer's passes are conditional on the cursor
they read, and each attempt is claimed by one process. A failure of a pass (the database unreachable) is logged
and the pass retried after a pause growing to 5 s; nothing is lost meanwhile, since the events and deliveries
wait in the database.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from jobctl.scheduler.addresses import guarded, public_addresses
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import webhooks as store
from jobctl.scheduler.store.common import utcnow
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.webhook_send import Resolve, Sender
from jobctl.scheduler.webhook_tail import RenderJob, Tailer

log = logging.getLogger(__name__)

PURGE_EVERY_S = 600.0


class Deliverer:
    """The webhook work of one scheduler process: `start()` it beside the loop, `stop()` it at the end."""

    def __init__(self, db: Database, settings: Settings, render: RenderJob, *, resolve: Resolve | None = None) -> None:
        """`render` gives a job's JSON as the API shows it. `resolve` picks the addresses a POST may go to; by
        default the guard's (`addresses.public_addresses`) when the settings guard webhooks, else none (httpx
        connects as usual)."""
        self.db = db
        self.settings = settings
        self.tailer = Tailer(db, render)
        if resolve is None and guarded(settings):
            resolve = public_addresses
        self.sender = Sender(db, settings, resolve=resolve)
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._owns_db = False

    @classmethod
    def open(cls, settings: Settings, render: RenderJob) -> Deliverer:
        """A deliverer on connections of its own (closed by `stop`): its threads never take one the scheduler's
        loop is waiting for."""
        deliverer = cls(Database(settings.database_url, pool_size=2), settings, render)
        deliverer._owns_db = True
        return deliverer

    def start(self) -> None:
        self.sender.start()
        self._thread = threading.Thread(target=self.run, name="jobctl-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (waiting up to `timeout` for its current pass) and let the senders end."""
        self.stopping.set()
        self.sender.freed.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.sender.stop()
        if self._owns_db:
            self.db.dispose()  # an attempt still out records nothing: its lease runs out and it is sent again

    def run(self) -> None:
        """Tail, claim and purge until `stopping` is set."""
        tick = self.settings.scheduler_tick_s
        last_tail = last_purge = 0.0
        pause = 0.0
        more = False
        while not self.stopping.is_set():
            try:
                if more or time.monotonic() - last_tail >= tick:
                    last_tail = time.monotonic()
                    more = self.tailer.run_pass()
                self.sender.freed.clear()  # an attempt ending from here on wakes the wait below
                self.sender.claim_due()
                if time.monotonic() - last_purge >= PURGE_EVERY_S:
                    last_purge = time.monotonic()
                    self.purge()
                pause = 0.0
            except Exception:
                pause = min(5.0, pause * 2 or 0.5)
                log.exception("webhook pass failed; retrying in %.1fs", pause)
                self.stopping.wait(pause)
                continue
            if not more:
                self.sender.freed.wait(max(0.0, tick - (time.monotonic() - last_tail)))

    def purge(self) -> int:
        """Delete delivered and failed deliveries older than the retention period. Returns how many."""
        before = utcnow() - timedelta(days=self.settings.retention_days)
        with self.db.write() as s:
            return store.purge_deliveries(s, before)
