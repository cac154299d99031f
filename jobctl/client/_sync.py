"""`Client`: calls a jobctl server over its HTTP API; `JobHandle`: one job, to wait for and operate."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from jobctl.client import _calls as calls
from jobctl.client._calls import Call
from jobctl.client._errors import Unreachable
from jobctl.client._http import API, default_url, error_of, headers, job_data, parse_sse, reason, send
from jobctl.client._models import (
    BatchResult,
    Event,
    Job,
    JobPage,
    JobQuery,
    JobStatus,
    JobType,
    JobUpdate,
    Me,
    NewUser,
    Project,
    Step,
    Target,
    TargetDeleted,
    User,
)
from jobctl.client._wait import intervals, outcome, timed_out

T = TypeVar("T")


class Client:
    """A jobctl server at `url` (default: `JOBCTL_URL`, else `http://127.0.0.1:$JOBCTL_API_PORT`), called as the
    holder of `token`. `http`: an `httpx.Client` to send with (its base URL is used; `close()` leaves it open).
    Every failed call raises a `jobctl.client.Error`."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.token = token
        self._owned = http is None
        self.http = http if http is not None else httpx.Client(base_url=self.url, timeout=timeout)
        self.targets = Targets(self)

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """A client of `JOBCTL_URL` (or the local API on `JOBCTL_API_PORT`) with the token in `JOBCTL_TOKEN`."""
        return cls(None, os.environ.get("JOBCTL_TOKEN") or None, **kwargs)

    def close(self) -> None:
        """Close the connection pool, if this client opened it."""
        if self._owned:
            self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def call(self, call: Call[T]) -> T:
        """Send one request (`jobctl.client._calls`) and read its answer."""
        return send(self.http, self.url, self.token, call)

    # -- jobs --------------------------------------------------------------------------------------------------

    def submit(
        self,
        type: str,
        *,
        project: str,
        params: Mapping[str, Any] | None = None,
        target: tuple[str, str] | None = None,
        priority: int | None = None,
    ) -> JobHandle:
        """Submit a job; its handle, as created (PENDING, every step PENDING). `Invalid` for params the job type
        refuses or a target it does not accept or that does not exist; `NotFound` for an unknown project."""
        return JobHandle(self, self.call(calls.submit(calls.submission(type, project, params, target, priority))))

    def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> list[JobHandle]:
        """Submit 1 to 1,000 jobs in one request (each a dict of `submit`'s arguments, `type` included): all of
        them are created, in order, or none is - `Invalid` then lists each refused one (`.items`)."""
        return [JobHandle(self, job) for job in self.call(calls.submit_many(jobs))]

    def job(self, job_id: str) -> JobHandle:
        """The job's handle, read now; `NotFound` if it does not exist for the caller."""
        return JobHandle(self, self.get_job(job_id))

    def jobs(
        self,
        *,
        project: str | Sequence[str] = (),
        status: str | Sequence[str] = (),
        type: str | None = None,
        q: str | None = None,
        period: str | None = None,
        since: str | None = None,
        until: str | None = None,
        sort: str | None = None,
        page_size: int = 200,
    ) -> Iterator[JobHandle]:
        """Every job the caller sees that matches the filters, reading page after page as it goes."""
        query = JobQuery(
            _names(project), _names(status), type, q, period, since, until, sort, page=1, page_size=page_size
        )
        while True:
            page = self.list_jobs(query)
            yield from (JobHandle(self, job) for job in page.items)
            if query.page * query.page_size >= page.total or not page.items:
                return
            query = JobQuery(**{**query.__dict__, "page": query.page + 1})

    def batch(
        self,
        action: str,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        atomic: bool = False,
    ) -> list[BatchResult]:
        """Operate many jobs at once, by id or by the list's filters; each job's outcome. `atomic`: nothing
        changes unless every job allows the action (`Conflict` otherwise)."""
        return self.call(calls.batch(action, ids, filter, atomic))

    def types(self) -> list[JobType]:
        """The job types the server knows."""
        return self.call(calls.types())

    # -- one call each (what the handles and the command line use) ------------------------------------------------

    def get_job(self, job_id: str) -> Job:
        return self.call(calls.get_job(job_id))

    def list_jobs(self, query: JobQuery | None = None) -> JobPage:
        """One page of the list."""
        return self.call(calls.list_jobs(query or JobQuery()))

    def operate(self, job_id: str, operation: str) -> Job | None:
        """pause, resume, restart, discard or delete (None: the job is gone); `Conflict` if its state refuses."""
        return self.call(calls.operate(job_id, operation))

    def job_events(self, project: str, read_timeout: float | None = 60) -> Iterator[dict[str, Any]]:
        """The data of each `job` event of the project's event stream, as they come, for as long as it lasts.
        `Unreachable` if it breaks or stays silent for `read_timeout` seconds (keepalives come more often)."""
        with self.event_stream(project, read_timeout) as events:
            yield from events

    @contextmanager
    def event_stream(self, project: str, read_timeout: float | None = 60) -> Iterator[Iterator[dict[str, Any]]]:
        """The project's event stream, open (subscribed) on entering: the data of its `job` events."""
        timeout = httpx.Timeout(10, read=read_timeout)
        try:
            with self.http.stream(
                "GET", f"{API}/events", params={"project": project}, headers=headers(self.token), timeout=timeout
            ) as answer:
                if answer.is_error:
                    answer.read()
                    raise error_of(answer)
                yield (data for event in parse_sse(answer.iter_lines()) if (data := job_data(event)) is not None)
        except httpx.HTTPError as exc:
            raise Unreachable(f"the event stream of {self.url} broke: {reason(exc)}") from exc
        except json.JSONDecodeError as exc:
            raise Unreachable(f"the event stream of {self.url} sent something that is not JSON: {exc}") from exc

    def me(self) -> Me:
        return self.call(calls.me())

    def list_projects(self) -> list[Project]:
        return self.call(calls.list_projects())

    def create_project(self, name: str, max_running: int | None = None) -> Project:
        return self.call(calls.create_project(name, max_running))

    def list_users(self) -> list[User]:
        return self.call(calls.list_users())

    def create_user(self, name: str, *, admin: bool = False, roles: Mapping[str, str] | None = None) -> NewUser:
        """A new user, with its token (shown only this once)."""
        return self.call(calls.create_user(name, admin, roles))

    def set_roles(self, name: str, roles: Mapping[str, str | None]) -> User | None:
        """Set the user's role per project (None removes it)."""
        return self.call(calls.set_roles(name, roles))


class Targets:
    """`client.targets`: a project's `record` targets."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, project: str) -> list[Target]:
        return self._client.call(calls.list_targets(project))

    def put(
        self, project: str, name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "record"
    ) -> Target:
        """Create or change the target (its version goes up on a change; jobs on it are discarded)."""
        return self._client.call(calls.put_target(project, name, attributes, kind))

    def delete(self, project: str, name: str, *, kind: str = "record") -> TargetDeleted | None:
        """Delete the target; its unfinished jobs are discarded (their ids in `discarded`)."""
        return self._client.call(calls.delete_target(project, name, kind))


class JobHandle:
    """One job: its fields as last read (`refresh()` reads again), waiting for it, and its operations."""

    def __init__(self, client: Client, job: Job) -> None:
        self.client = client
        self.job = job

    def __repr__(self) -> str:
        return f"<JobHandle {self.job.id} {self.job.type} {self.job.status.value} {self.job.progress:g}%>"

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

    def __getattr__(self, name: str) -> Any:  # every other field of the job JSON: project, type, error, ...
        if name == "job":
            raise AttributeError(name)
        return getattr(self.job, name)

    def refresh(self) -> JobHandle:
        """Read the job again."""
        self.job = self.client.get_job(self.job.id)
        return self

    def wait(self, timeout: float | None = None) -> JobHandle:
        """Until the job is FINISHED, DISCARDED or ERROR (then the handle holds it as it ended);
        `TimeoutError` if it is not after `timeout` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for pause in intervals():
            if self.refresh().job.status.ended:
                return self
            if deadline is not None and time.monotonic() + pause > deadline:
                raise timed_out(self.job, timeout or 0)
            time.sleep(pause)
        raise AssertionError("unreachable")

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job (`wait`) and return its `result`; `JobFailed` if it ended in ERROR, `JobDiscarded`
        if it was discarded."""
        return outcome(self.wait(timeout).job)

    def pause(self) -> JobHandle:
        return self._operate("pause")

    def resume(self) -> JobHandle:
        return self._operate("resume")

    def restart(self) -> JobHandle:
        return self._operate("restart")

    def discard(self) -> JobHandle:
        return self._operate("discard")

    def delete(self) -> None:
        """Delete the job (FINISHED or DISCARDED only; `Conflict` otherwise)."""
        self.client.operate(self.job.id, "delete")

    def _operate(self, operation: str) -> JobHandle:
        job = self.client.operate(self.job.id, operation)
        if job is not None:
            self.job = job
        return self

    def events(self) -> list[Event]:
        """The job's history: every change of state, who made it and why."""
        return self.client.call(calls.events(self.job.id))

    def log(self, step: int = 0, tail: int | None = None) -> str:
        """The step's log (its last `tail` lines)."""
        return self.client.call(calls.log(self.job.id, step, tail))

    def watch(self, read_timeout: float | None = 60) -> Iterator[JobUpdate]:
        """Live updates of this job (status and progress, from the event stream) until it is final; the handle
        is read again at the end. A job that is final already yields its state once."""
        with self.client.event_stream(self.job.project, read_timeout) as stream:
            if self.refresh().job.status.final:  # read after subscribing: no change slips between the two
                yield _update_of(self.job)
                return
            for data in stream:
                if data.get("id") != self.job.id:
                    continue
                update = JobUpdate.model_validate(data)
                yield update
                if update.status.final:
                    self.refresh()
                    return


def _update_of(job: Job) -> JobUpdate:
    return JobUpdate(id=job.id, project=job.project, status=job.status, progress=job.progress)


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)
