"""What a job handle is, for the sync and the async client alike: the job as last read and its fields
(`JobView`), how `wait` paces its reads and when it gives up (`Pacer`), what an ended job means for `result()`
(`outcome`), and what `watch` makes of the event stream (`Follower`). `JobHandle` and `AsyncJobHandle` add only
the sending and the sleeping."""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from jobctl.client._errors import BadAnswer, JobDiscarded, JobFailed, NotFound
from jobctl.client._models import Job, JobStatus, JobTarget, JobUpdate, Step

C = TypeVar("C")

#: `wait` reads the job this soon at first (short jobs end fast), then half as often again each time ...
FIRST_POLL_S = 0.02
#: ... but never less often than this (unless given another `poll`)
LONGEST_POLL_S = 0.5
#: `watch` subscribes again this long after the server ended the event stream (e.g. its Redis restarted)
RESUBSCRIBE_S = 0.5
#: the most other handles' jobs a `wait` reads along with its own (the list's largest page)
READ_ALONG = 200


class JobView(Generic[C]):
    """A job as last read: `job` (the whole `Job` model) and its fields as attributes - `id`, `status`,
    `progress`, `steps`, `project`, ... - including fields a newer server adds. The job's `result` field is
    `job.result` (the handle's `result` is the method that waits for it)."""

    def __init__(self, client: C, job: Job) -> None:
        self.client = client
        self.job = job
        unended: Unended | None = getattr(client, "unended", None)
        if unended is not None:
            unended.add(self)

    def __repr__(self) -> str:
        job = self.job
        return f"<{type(self).__name__} {job.id} {job.type} {job.status.value} {job.progress:g}%>"

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def status(self) -> JobStatus:
        return self.job.status

    @property
    def progress(self) -> float:
        return self.job.progress

    @property
    def steps(self) -> list[Step]:
        return self.job.steps

    @property
    def project(self) -> str:
        return self.job.project

    @property
    def type(self) -> str:
        return self.job.type

    @property
    def target(self) -> JobTarget | None:
        return self.job.target

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    @property
    def error(self) -> Any:
        return self.job.error

    @property
    def discard_reason(self) -> str | None:
        return self.job.discard_reason

    @property
    def allowed(self) -> list[str]:
        """The operations the job's state allowed when it was read."""
        return self.job.allowed

    @property
    def created_at(self) -> datetime:
        return self.job.created_at

    def __getattr__(self, name: str) -> Any:  # every other field: priority, started_at, attempt, new ones ...
        if name == "job" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.job, name)


class Unended:
    """The handles of one client whose job may still change (neither FINISHED nor DISCARDED), oldest first, held
    weakly. When a `wait` sees its own job end, it reads which of these jobs ended too, in one list request
    (`others`, `take`), so a script that submits many jobs and then asks each handle for its `result()` in turn
    sends one request per batch of jobs that ended, not one per job: a handle holding a FINISHED or DISCARDED job
    returns it without reading it again, as that job never changes. Thread-safe."""

    def __init__(self) -> None:
        self._views: weakref.WeakValueDictionary[int, JobView[Any]] = weakref.WeakValueDictionary()
        self._order = itertools.count()
        self._lock = threading.Lock()

    def add(self, view: JobView[Any]) -> None:
        """Keep `view` while its job may change."""
        if not view.job.status.final:
            with self._lock:
                self._views[next(self._order)] = view

    def others(self, view: JobView[Any], limit: int = READ_ALONG) -> list[JobView[Any]]:
        """The oldest `limit` handles, other than `view`, whose job may still change as far as they know (and
        none of another handle's job): whose ended jobs `view`'s wait reads along. Forgets the rest that ended."""
        found: list[JobView[Any]] = []
        ids = {view.job.id}
        with self._lock:
            for key, other in list(self._views.items()):
                if other.job.status.final:
                    del self._views[key]
                elif len(found) < limit and other.job.id not in ids:
                    found.append(other)
                    ids.add(other.job.id)
        return found

    @staticmethod
    def take(views: list[JobView[Any]], jobs: list[Job]) -> None:
        """Give each of `views` its job as just read in `jobs`, if there."""
        by_id = {job.id: job for job in jobs}
        for view in views:
            job = by_id.get(view.job.id)
            if job is not None:
                view.job = job


class Pacer:
    """The reads of a `wait`: `after(job)` says how long to sleep before reading the job again - 20 ms at first,
    growing to `poll` (default 0.5 s) - and never past the deadline, so the last read is at `timeout`."""

    def __init__(self, timeout: float | None, poll: float | None = None) -> None:
        longest = LONGEST_POLL_S if poll is None else poll
        if longest <= 0:
            raise ValueError("poll must be more than 0 seconds")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative")
        self.timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._longest = longest
        self._next = min(FIRST_POLL_S, longest)

    def after(self, job: Job) -> float | None:
        """None if `job` (just read) has ended - FINISHED, DISCARDED or ERROR; else the seconds to sleep before
        the next read. `TimeoutError` once the deadline has passed."""
        if job.status.ended:
            return None
        pause, self._next = self._next, min(self._longest, self._next * 1.5)
        if self._deadline is None:
            return pause
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"job {job.id} is still {job.status.value} after {self.timeout:g}s")
        return min(pause, left)


def outcome(job: Job) -> Any:
    """The result of a job that ended: its `result` if FINISHED; `JobFailed` for ERROR; `JobDiscarded`."""
    if job.status is JobStatus.ERROR:
        raise JobFailed(job)
    if job.status is JobStatus.DISCARDED:
        raise JobDiscarded(job)
    return job.result


class Follower:
    """What `watch` makes of one job's place in the event stream. After each (re)subscription the job is read
    (`read`): its state is an update unless it is the one yielded last. Then each `job` event of this job is one
    (`event`). `done` once the job is final; a deleted job is `NotFound`."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.done = False
        self._last: JobUpdate | None = None

    def read(self, job: Job) -> JobUpdate | None:
        update = JobUpdate(id=job.id, project=job.project, status=job.status, progress=job.progress)
        last = self._last
        if last is not None and (last.status, last.progress) == (update.status, update.progress):
            return None
        return self._yielded(update)

    def event(self, data: dict[str, Any]) -> JobUpdate | None:
        if data.get("id") != self.job_id:
            return None
        if data.get("deleted"):
            raise NotFound(404, "not_found", f"job {self.job_id} was deleted")
        try:
            update = JobUpdate.model_validate(data)
        except ValidationError as exc:
            raise BadAnswer(f"a job event of {self.job_id} is not one: {exc.errors()[0]['msg']}") from exc
        return self._yielded(update)

    def _yielded(self, update: JobUpdate) -> JobUpdate:
        self._last = update
        self.done = update.status.final
        return update
