"""`Client`: calls a jobctl server over its HTTP API; `JobHandle`: one job, to wait for, follow and operate.

Each method sends one `Call` (`_calls`) through `_http`, which builds the request and reads the answer or the
error; the rules of a handle are `_handle`'s. Every failed call raises a `jobctl.client.Error`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx

from jobctl.client import _calls as calls
from jobctl.client._calls import Call
from jobctl.client._errors import Error
from jobctl.client._handle import RESUBSCRIBE_S, Follower, JobView, Pacer, Unended, outcome
from jobctl.client._http import (
    STREAM_READ_TIMEOUT_S,
    base_url,
    build,
    env_token,
    error_of,
    job_events,
    send,
    stream_timeout,
    unreachable,
)
from jobctl.client._models import (
    AuditPage,
    BatchResult,
    Event,
    Job,
    JobPage,
    JobQuery,
    JobType,
    JobUpdate,
    Me,
    NewToken,
    NewUser,
    Project,
    Stats,
    Target,
    TargetDeleted,
    Token,
    User,
)
from jobctl.client._webhooks import Webhooks

T = TypeVar("T")


class Client:
    """A jobctl server at `url` (default: `JOBCTL_URL`, else `http://127.0.0.1:$JOBCTL_API_PORT`, port 8000),
    called as the holder of `token`. `timeout`: each request's, in seconds. `http`: an `httpx.Client` to send
    with instead of its own (its base URL is used; `close()` leaves it open). A context manager.
    Every failed call raises a `jobctl.client.Error`."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = base_url(url)
        self.token = token
        self._owned = http is None
        self.http = http if http is not None else httpx.Client(base_url=self.url, timeout=timeout)
        self.targets = Targets(self)
        self.webhooks = Webhooks(self)
        self.unended = Unended()  # this client's handles whose job may still change: see `JobHandle.wait`

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """A client of `JOBCTL_URL` (else the local API on `JOBCTL_API_PORT`) with the token in `JOBCTL_TOKEN`."""
        return cls(None, env_token(), **kwargs)

    def close(self) -> None:
        """Close the connections, if this client opened them."""
        if self._owned:
            self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Client {self.url}>"

    def call(self, call: Call[T]) -> T:
        """Send one request (a `Call`) and read its answer."""
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
        """Submit a job (`target` as `(kind, name)`); its handle, as created: PENDING, every step PENDING.
        `Invalid` for params the job type refuses, or a target it does not take or that does not exist;
        `NotFound` for a project the caller cannot see; `Forbidden` without the operator role."""
        return JobHandle(self, self.call(calls.submit(calls.submission(type, project, params, target, priority))))

    def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> list[JobHandle]:
        """Submit 1 to 1,000 jobs in one request, each a dict of `submit`'s arguments with `type` (`target` as
        a pair or `{kind, name}`): all are created, their handles in order, or none is - `Invalid` then lists
        each refused one in `.items` as `{index, message}`."""
        return [JobHandle(self, job) for job in self.call(calls.submit_many(jobs))]

    def job(self, job_id: str) -> JobHandle:
        """The handle of an existing job, read now; `NotFound` if the caller cannot see it."""
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
        error_code: str | Sequence[str] = (),
    ) -> Iterator[JobHandle]:
        """Every job the caller sees that matches the list's filters (`project`, `status`, `error_code`: one or
        several), as handles, reading page after page (`page_size` jobs each) as the iteration goes."""
        query: JobQuery | None = calls.job_query(
            project, status, type, q, period, since, until, sort, page_size, error_code
        )
        while query is not None:
            page = self.list_jobs(query)
            yield from (JobHandle(self, job) for job in page.items)
            query = query.following(page)

    def batch(
        self,
        action: str,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        atomic: bool = False,
        dry_run: bool = False,
    ) -> list[BatchResult]:
        """Apply `action` (pause, resume, restart, discard, delete) to the jobs `ids`, or to every job matching
        `filter` (the list's filters, e.g. `{"project": ["demo"], "status": ["RUNNING"]}`): each job's outcome.
        With `atomic`, nothing changes unless every job allows it: `Conflict` (`.refused`) otherwise. With
        `dry_run`, nothing changes at all: the outcomes are those the batch would have now."""
        return self.call(calls.batch(action, ids, filter, atomic, dry_run))

    def types(self) -> list[JobType]:
        """The job types the server knows: params schema, steps (None: planned from the params), target kind,
        exclusivity."""
        return self.call(calls.types())

    def stats(
        self,
        *,
        project: str | Sequence[str] = (),
        period: str | None = None,
        since: datetime | timedelta | str | None = None,
        until: datetime | timedelta | str | None = None,
    ) -> Stats:
        """Statistics of the jobs created in a window (`period`: day, week, month, year, all; or `since`/`until`:
        a datetime, a timedelta back from now, or ISO-8601 text), in `project` (one or several; none: every one
        the caller sees): counts by status, type and project; per type the p50 and p95 of the running and waiting
        times of its FINISHED jobs, slowest first; per UTC day, the jobs that finished and that failed.
        `NotFound` for a project the caller cannot see; `Invalid` for a period with since/until."""
        return self.call(calls.stats(project, period, since, until))

    # -- one call each (what the handles and the command line use) ---------------------------------------------

    def get_job(self, job_id: str) -> Job:
        """The job, read now."""
        return self.call(calls.get_job(job_id))

    def list_jobs(self, query: JobQuery | None = None) -> JobPage:
        """One page of the job list."""
        return self.call(calls.list_jobs(query or JobQuery()))

    def operate(self, job_id: str, operation: str) -> Job | None:
        """pause, resume, restart, discard (the job as left) or delete (None); `Conflict` if its state refuses."""
        return self.call(calls.operate(job_id, operation))

    def edit_params(self, job_id: str, params: Mapping[str, Any]) -> Job:
        """Replace a PAUSED or ERROR job's params, whole (its unfinished steps run with them once it is resumed);
        the job as it is now. `Conflict` (`.status`, `.allowed`) in another state; `Invalid` for params its type
        refuses or that plan other steps; `Forbidden` without the operator role."""
        return self.call(calls.edit_params(job_id, params))

    def diagnostics(self, job_id: str) -> bytes:
        """The job's diagnostic bundle: a zip (its JSON and events, every step's log, its type, the workers that
        ran it, the server's settings without secrets, the versions), as bytes to save."""
        return self.call(calls.diagnostics(job_id))

    def job_events(self, project: str, read_timeout: float | None = STREAM_READ_TIMEOUT_S) -> Iterator[dict[str, Any]]:
        """The data of each `job` event of the project's live event stream, as they come, for as long as it
        lasts. `Unreachable` if it breaks or stays silent for `read_timeout` seconds (keepalives come more often)."""
        with self.event_stream(project, read_timeout) as events:
            yield from events

    @contextmanager
    def event_stream(
        self, project: str, read_timeout: float | None = STREAM_READ_TIMEOUT_S
    ) -> Iterator[Iterator[dict[str, Any]]]:
        """The project's live event stream, subscribed on entering (its first line has come): the data of its
        `job` events (`{id, project, status, progress, step}`)."""
        request = build(self.http, self.token, calls.live_events(project), stream_timeout(read_timeout))
        try:
            answer = self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc, "open the event stream") from exc
        try:
            if answer.is_error:
                answer.read()
                raise error_of(answer, self.token)
            lines = answer.iter_lines()
            first = next(lines, "")  # the server writes its first line once it has subscribed
            yield job_events(itertools.chain([first], lines), self.url)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc, "read the event stream") from exc
        finally:
            answer.close()

    def me(self) -> Me:
        """The caller: name, admin, role per project."""
        return self.call(calls.me())

    def list_projects(self) -> list[Project]:
        """The projects the caller sees."""
        return self.call(calls.list_projects())

    def create_project(self, name: str, max_running: int | None = None) -> Project:
        """Create a project (admins only)."""
        return self.call(calls.create_project(name, max_running))

    def update_project(self, name: str, *, max_running: int | None) -> Project:
        """Set how many of the project's jobs may be RUNNING at once (an int >= 1; None: the server's default);
        admins only. The project as it is now. `NotFound` for no such project; `Invalid` for a limit under 1."""
        return self.call(calls.update_project(name, max_running))

    def delete_project(self, name: str) -> None:
        """Delete a project (admins only). `NotFound` for no such project; `Conflict`, and nothing deleted,
        while it holds a job that is not final (not FINISHED or DISCARDED)."""
        self.call(calls.delete_project(name))

    def list_users(self) -> list[User]:
        """Every user (admins only)."""
        return self.call(calls.list_users())

    def create_user(self, name: str, *, admin: bool = False, roles: Mapping[str, str] | None = None) -> NewUser:
        """Create a user (admins only): it comes with its token, shown only this once."""
        return self.call(calls.create_user(name, admin, roles))

    def set_roles(self, name: str, roles: Mapping[str, str | None]) -> User | None:
        """Set the user's role per project (`viewer`, `operator`; None takes it away; admins only)."""
        return self.call(calls.set_roles(name, roles))

    def update_user(self, name: str, *, disabled: bool | None = None, admin: bool | None = None) -> User:
        """Disable or enable a user, make them an admin or not (admins only); what is None stays as it is. The
        user as it is now. `NotFound` for no such user; `Conflict`, and nothing changed, if it would leave no
        enabled admin; `ValueError` (nothing sent) if both are None."""
        return self.call(calls.update_user(name, disabled, admin))

    def delete_user(self, name: str) -> None:
        """Delete a user (admins only). `NotFound` for no such user; `Conflict`, and nothing deleted, if they
        are the last enabled admin."""
        self.call(calls.delete_user(name))

    def create_token(
        self, name: str, *, user: str | None = None, expires_at: datetime | timedelta | None = None
    ) -> NewToken:
        """Create a token named `name` for `user` (admins only), or for the caller when `user` is None. It
        expires at `expires_at`: a datetime (a naive one is local time) or a timedelta from now; None: never.
        The answer holds the token's value, shown only this once. `Conflict` if the user already has a token of
        that name; `NotFound` for no such user; `Invalid` if `expires_at` is not in the future."""
        return self.call(calls.create_token(user, name, expires_at))

    def list_tokens(self, *, user: str | None = None) -> list[Token]:
        """The tokens of `user` (admins only), or the caller's own when None: names, prefixes, times, whether
        expired - never their values."""
        return self.call(calls.list_tokens(user))

    def revoke_token(self, name: str, *, user: str | None = None) -> None:
        """Revoke `user`'s token `name` (admins only), or the caller's own when `user` is None: it is refused
        from then on. `NotFound` if there is no such token."""
        self.call(calls.revoke_token(user, name))

    def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | timedelta | str | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> AuditPage:
        """One page of the audit log, newest first (admins only): who did what (`user.create`, `token.revoke`,
        ...) to what, from where, and its outcome. Only `actor`'s entries; only `action` (or every action of a
        kind: `user.`); only since `since` (a datetime, a timedelta back from now, or ISO-8601 text)."""
        return self.call(calls.audit(actor, action, since, page, page_size))


class Targets:
    """`client.targets`: a project's targets."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, project: str) -> list[Target]:
        """The project's targets, with their versions and attributes."""
        return self._client.call(calls.list_targets(project))

    def put(
        self, project: str, name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "record"
    ) -> Target:
        """Create or change a target; a change raises its version and discards the unfinished jobs on it."""
        return self._client.call(calls.put_target(project, name, attributes, kind))

    def delete(self, project: str, name: str, *, kind: str = "record") -> TargetDeleted | None:
        """Delete a target; its unfinished jobs are discarded (their ids in `discarded`)."""
        return self._client.call(calls.delete_target(project, name, kind))


class JobHandle(JobView[Client]):
    """One job: its fields as last read (`refresh()` reads again), waiting for it, following it, operating it."""

    def refresh(self) -> JobHandle:
        """Read the job again; the handle."""
        self.job = self.client.get_job(self.job.id)
        return self

    def wait(self, timeout: float | None = None, *, poll: float | None = None) -> JobHandle:
        """Until the job is FINISHED, DISCARDED or ERROR; the handle, holding the job as it ended. The job is
        read every 20 ms at first, then less often, at least every `poll` seconds (0.5). `TimeoutError` if it
        has not ended after `timeout` seconds (None: no limit).

        A handle already holding a FINISHED or DISCARDED job returns at once: that job never changes. When the
        job ends, the jobs of this client's other handles that ended too are read in the same go, one request
        for up to 200 (`Unended`): waiting for many jobs one after another costs a request per batch of them."""
        if self.job.status.final:
            return self
        pacer = Pacer(timeout, poll)
        while (pause := pacer.after(self.refresh().job)) is not None:
            time.sleep(pause)
        self._read_along()
        return self

    def _read_along(self) -> None:
        """Read which jobs of the client's other waiting handles ended, and hand them their jobs."""
        others = self.client.unended.others(self)
        if not others:
            return
        try:
            page = self.client.call(calls.ended_among([other.job.id for other in others]))
        except Error:  # only a shortcut: each of them reads its own job when waited for
            return
        Unended.take(others, page.items)

    def result(self, timeout: float | None = None, *, poll: float | None = None) -> Any:
        """`wait`, then the job's `result` if it FINISHED; `JobFailed` (`.job`, `.error`) if it ended in ERROR,
        `JobDiscarded` (`.job`, `.reason`) if it was discarded; `TimeoutError` as `wait`."""
        return outcome(self.wait(timeout, poll=poll).job)

    def pause(self) -> JobHandle:
        """Pause the job (PENDING or RUNNING); `Conflict` (`.status`, `.allowed`) otherwise."""
        return self._operate("pause")

    def resume(self) -> JobHandle:
        """Resume the job (PAUSED or ERROR) from its first unfinished step; `Conflict` otherwise."""
        return self._operate("resume")

    def restart(self) -> JobHandle:
        """Run the job again from its first step (RUNNING, PAUSED or ERROR); `Conflict` otherwise."""
        return self._operate("restart")

    def discard(self) -> JobHandle:
        """Discard the job for good (any state but FINISHED and DISCARDED); `Conflict` otherwise."""
        return self._operate("discard")

    def delete(self) -> None:
        """Delete the job (FINISHED or DISCARDED); `Conflict` otherwise."""
        self.client.operate(self.job.id, "delete")

    def _operate(self, operation: str) -> JobHandle:
        job = self.client.operate(self.job.id, operation)
        if job is not None:
            self.job = job
        return self

    def edit(self, params: Mapping[str, Any]) -> JobHandle:
        """Replace the job's params (PAUSED or ERROR: `Client.edit_params`); the handle, holding the job as it is
        now. `resume()` then runs its unfinished steps with them."""
        self.job = self.client.edit_params(self.job.id, params)
        return self

    def diagnostics(self) -> bytes:
        """The job's diagnostic bundle, a zip, as bytes (`Client.diagnostics`)."""
        return self.client.diagnostics(self.job.id)

    def events(self) -> list[Event]:
        """The job's history: each change of state, when, by whom, from and to what, and why."""
        return self.client.call(calls.events(self.job.id))

    def log(self, step: int = 0, tail: int | None = None) -> str:
        """The log of step `step` (its index), as text: the last `tail` lines (None: all)."""
        return self.client.call(calls.log(self.job.id, step, tail))

    def watch(self, read_timeout: float | None = STREAM_READ_TIMEOUT_S) -> Iterator[JobUpdate]:
        """Live updates of the job from the event stream: its state when the watch starts, then every change
        (status, progress, the step that changed), until the job is final (FINISHED or DISCARDED); the handle
        is read again then. A job final already yields its state once. A stream the server ends is subscribed
        again; one that breaks, or is silent for `read_timeout` seconds, is `Unreachable`."""
        follower = Follower(self.job.id)
        while True:
            with self.client.event_stream(self.job.project, read_timeout) as stream:
                # Read after subscribing: no change can slip between the read and the first event.
                update = follower.read(self.refresh().job)
                if update is not None:
                    yield update
                if follower.done:
                    return
                for data in stream:
                    update = follower.event(data)
                    if update is not None:
                        yield update
                        if follower.done:
                            self.refresh()
                            return
            time.sleep(RESUBSCRIBE_S)
