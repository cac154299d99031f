"""`AsyncClient` and `AsyncJobHandle`: `Client` and `JobHandle` with coroutines, over `httpx.AsyncClient`. They
send the same `Call`s (`_calls`) through the same layer (`_http`) and keep the same rules (`_handle`): the same
arguments, answers and errors; `jobs()`, `job_events()` and `watch()` are async iterators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx

from jobctl.client import _calls as calls
from jobctl.client._calls import Call
from jobctl.client._errors import Error
from jobctl.client._handle import RESUBSCRIBE_S, Follower, JobView, Pacer, Unended, outcome
from jobctl.client._http import (
    STREAM_READ_TIMEOUT_S,
    SSEParser,
    asend,
    base_url,
    build,
    env_token,
    error_of,
    job_data,
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
from jobctl.client._webhooks import AsyncWebhooks

T = TypeVar("T")


class AsyncClient:
    """`Client` with coroutines: the same arguments (`http`: an `httpx.AsyncClient`), methods, answers and
    errors. Closes with `await c.aclose()` (or `close()`) or `async with`."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = base_url(url)
        self.token = token
        self._owned = http is None
        self.http = http if http is not None else httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self.targets = AsyncTargets(self)
        self.webhooks = AsyncWebhooks(self)
        self.unended = Unended()  # this client's handles whose job may still change: see `JobHandle.wait`

    @classmethod
    def from_env(cls, **kwargs: Any) -> AsyncClient:
        """A client of `JOBCTL_URL` (else the local API on `JOBCTL_API_PORT`) with the token in `JOBCTL_TOKEN`."""
        return cls(None, env_token(), **kwargs)

    async def aclose(self) -> None:
        """Close the connections, if this client opened them."""
        if self._owned:
            await self.http.aclose()

    async def close(self) -> None:
        """`aclose()`."""
        await self.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncClient {self.url}>"

    async def call(self, call: Call[T]) -> T:
        """Send one request (a `Call`) and read its answer."""
        return await asend(self.http, self.url, self.token, call)

    # -- jobs --------------------------------------------------------------------------------------------------

    async def submit(
        self,
        type: str,
        *,
        project: str,
        params: Mapping[str, Any] | None = None,
        target: tuple[str, str] | None = None,
        priority: int | None = None,
    ) -> AsyncJobHandle:
        """`Client.submit`."""
        job = await self.call(calls.submit(calls.submission(type, project, params, target, priority)))
        return AsyncJobHandle(self, job)

    async def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> list[AsyncJobHandle]:
        """`Client.submit_many`: one request; all are created or none is (`Invalid`, `.items`)."""
        return [AsyncJobHandle(self, job) for job in await self.call(calls.submit_many(jobs))]

    async def job(self, job_id: str) -> AsyncJobHandle:
        """`Client.job`."""
        return AsyncJobHandle(self, await self.get_job(job_id))

    async def jobs(
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
    ) -> AsyncIterator[AsyncJobHandle]:
        """`Client.jobs`: every matching job, page after page, as an async iterator."""
        query: JobQuery | None = calls.job_query(
            project, status, type, q, period, since, until, sort, page_size, error_code
        )
        while query is not None:
            page = await self.list_jobs(query)
            for job in page.items:
                yield AsyncJobHandle(self, job)
            query = query.following(page)

    async def batch(
        self,
        action: str,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        atomic: bool = False,
        dry_run: bool = False,
    ) -> list[BatchResult]:
        """`Client.batch`."""
        return await self.call(calls.batch(action, ids, filter, atomic, dry_run))

    async def types(self) -> list[JobType]:
        """`Client.types`."""
        return await self.call(calls.types())

    async def stats(
        self,
        *,
        project: str | Sequence[str] = (),
        period: str | None = None,
        since: datetime | timedelta | str | None = None,
        until: datetime | timedelta | str | None = None,
    ) -> Stats:
        """`Client.stats`: statistics of the jobs created in a window."""
        return await self.call(calls.stats(project, period, since, until))

    # -- one call each -----------------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        """The job, read now."""
        return await self.call(calls.get_job(job_id))

    async def list_jobs(self, query: JobQuery | None = None) -> JobPage:
        """One page of the job list."""
        return await self.call(calls.list_jobs(query or JobQuery()))

    async def operate(self, job_id: str, operation: str) -> Job | None:
        """`Client.operate`."""
        return await self.call(calls.operate(job_id, operation))

    async def edit_params(self, job_id: str, params: Mapping[str, Any]) -> Job:
        """`Client.edit_params`."""
        return await self.call(calls.edit_params(job_id, params))

    async def diagnostics(self, job_id: str) -> bytes:
        """`Client.diagnostics`."""
        return await self.call(calls.diagnostics(job_id))

    async def job_events(
        self, project: str, read_timeout: float | None = STREAM_READ_TIMEOUT_S
    ) -> AsyncIterator[dict[str, Any]]:
        """`Client.job_events`, as an async iterator."""
        async with self.event_stream(project, read_timeout) as events:
            async for data in events:
                yield data

    @asynccontextmanager
    async def event_stream(
        self, project: str, read_timeout: float | None = STREAM_READ_TIMEOUT_S
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """`Client.event_stream`: subscribed on entering; the data of its `job` events as an async iterator."""
        request = build(self.http, self.token, calls.live_events(project), stream_timeout(read_timeout))
        try:
            answer = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc, "open the event stream") from exc
        try:
            if answer.is_error:
                await answer.aread()
                raise error_of(answer, self.token)
            lines = answer.aiter_lines()
            first = await anext(lines, "")  # the server writes its first line once it has subscribed
            yield self._job_events(first, lines)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc, "read the event stream") from exc
        finally:
            await answer.aclose()

    async def _job_events(self, first: str, lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
        parser = SSEParser()
        data = job_data(parser.feed(first), self.url)
        if data is not None:
            yield data
        async for line in lines:
            data = job_data(parser.feed(line), self.url)
            if data is not None:
                yield data

    async def me(self) -> Me:
        """The caller: name, admin, role per project."""
        return await self.call(calls.me())

    async def list_projects(self) -> list[Project]:
        """The projects the caller sees."""
        return await self.call(calls.list_projects())

    async def create_project(self, name: str, max_running: int | None = None) -> Project:
        """Create a project (admins only)."""
        return await self.call(calls.create_project(name, max_running))

    async def update_project(self, name: str, *, max_running: int | None) -> Project:
        """`Client.update_project`: the project's limit of RUNNING jobs (None: the server's default)."""
        return await self.call(calls.update_project(name, max_running))

    async def delete_project(self, name: str) -> None:
        """`Client.delete_project`: `Conflict` while it holds a job that is not final."""
        await self.call(calls.delete_project(name))

    async def list_users(self) -> list[User]:
        """Every user (admins only)."""
        return await self.call(calls.list_users())

    async def create_user(self, name: str, *, admin: bool = False, roles: Mapping[str, str] | None = None) -> NewUser:
        """Create a user (admins only): it comes with its token, shown only this once."""
        return await self.call(calls.create_user(name, admin, roles))

    async def set_roles(self, name: str, roles: Mapping[str, str | None]) -> User | None:
        """Set the user's role per project (None takes it away; admins only)."""
        return await self.call(calls.set_roles(name, roles))

    async def update_user(self, name: str, *, disabled: bool | None = None, admin: bool | None = None) -> User:
        """`Client.update_user`: `Conflict` if it would leave no enabled admin."""
        return await self.call(calls.update_user(name, disabled, admin))

    async def delete_user(self, name: str) -> None:
        """`Client.delete_user`: `Conflict` for the last enabled admin."""
        await self.call(calls.delete_user(name))

    async def create_token(
        self, name: str, *, user: str | None = None, expires_at: datetime | timedelta | None = None
    ) -> NewToken:
        """`Client.create_token`: `user`'s (None: the caller's); its value shown only this once."""
        return await self.call(calls.create_token(user, name, expires_at))

    async def list_tokens(self, *, user: str | None = None) -> list[Token]:
        """`Client.list_tokens`: never their values."""
        return await self.call(calls.list_tokens(user))

    async def revoke_token(self, name: str, *, user: str | None = None) -> None:
        """`Client.revoke_token`."""
        await self.call(calls.revoke_token(user, name))

    async def audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | timedelta | str | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> AuditPage:
        """`Client.audit`: one page of the audit log."""
        return await self.call(calls.audit(actor, action, since, page, page_size))


class AsyncTargets:
    """`client.targets` of an `AsyncClient`: `Targets` with coroutines."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, project: str) -> list[Target]:
        """The project's targets."""
        return await self._client.call(calls.list_targets(project))

    async def put(
        self, project: str, name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "record"
    ) -> Target:
        """Create or change a target (a change discards the unfinished jobs on it)."""
        return await self._client.call(calls.put_target(project, name, attributes, kind))

    async def delete(self, project: str, name: str, *, kind: str = "record") -> TargetDeleted | None:
        """Delete a target; its unfinished jobs are discarded."""
        return await self._client.call(calls.delete_target(project, name, kind))


class AsyncJobHandle(JobView[AsyncClient]):
    """`JobHandle` with coroutines: the same fields, the same rules."""

    async def refresh(self) -> AsyncJobHandle:
        """Read the job again; the handle."""
        self.job = await self.client.get_job(self.job.id)
        return self

    async def wait(self, timeout: float | None = None, *, poll: float | None = None) -> AsyncJobHandle:
        """`JobHandle.wait`: until FINISHED, DISCARDED or ERROR; `TimeoutError` after `timeout` seconds. At once
        for a FINISHED or DISCARDED job; reads along the other handles' jobs that ended, as `JobHandle.wait`."""
        if self.job.status.final:
            return self
        pacer = Pacer(timeout, poll)
        while (pause := pacer.after((await self.refresh()).job)) is not None:
            await asyncio.sleep(pause)
        await self._read_along()
        return self

    async def _read_along(self) -> None:
        """`JobHandle._read_along`."""
        others = self.client.unended.others(self)
        if not others:
            return
        try:
            page = await self.client.call(calls.ended_among([other.job.id for other in others]))
        except Error:  # only a shortcut: each of them reads its own job when waited for
            return
        Unended.take(others, page.items)

    async def result(self, timeout: float | None = None, *, poll: float | None = None) -> Any:
        """`JobHandle.result`: the result of a FINISHED job; `JobFailed`, `JobDiscarded`, `TimeoutError`."""
        return outcome((await self.wait(timeout, poll=poll)).job)

    async def pause(self) -> AsyncJobHandle:
        """Pause the job; `Conflict` if its state refuses."""
        return await self._operate("pause")

    async def resume(self) -> AsyncJobHandle:
        """Resume the job; `Conflict` if its state refuses."""
        return await self._operate("resume")

    async def restart(self) -> AsyncJobHandle:
        """Restart the job; `Conflict` if its state refuses."""
        return await self._operate("restart")

    async def discard(self) -> AsyncJobHandle:
        """Discard the job; `Conflict` if its state refuses."""
        return await self._operate("discard")

    async def delete(self) -> None:
        """Delete the job (FINISHED or DISCARDED); `Conflict` otherwise."""
        await self.client.operate(self.job.id, "delete")

    async def _operate(self, operation: str) -> AsyncJobHandle:
        job = await self.client.operate(self.job.id, operation)
        if job is not None:
            self.job = job
        return self

    async def edit(self, params: Mapping[str, Any]) -> AsyncJobHandle:
        """`JobHandle.edit`."""
        self.job = await self.client.edit_params(self.job.id, params)
        return self

    async def diagnostics(self) -> bytes:
        """`JobHandle.diagnostics`."""
        return await self.client.diagnostics(self.job.id)

    async def events(self) -> list[Event]:
        """The job's history."""
        return await self.client.call(calls.events(self.job.id))

    async def log(self, step: int = 0, tail: int | None = None) -> str:
        """A step's log, as text (the last `tail` lines; None: all)."""
        return await self.client.call(calls.log(self.job.id, step, tail))

    async def watch(self, read_timeout: float | None = STREAM_READ_TIMEOUT_S) -> AsyncIterator[JobUpdate]:
        """`JobHandle.watch`, as an async iterator: the job's state, then each change, until it is final."""
        follower = Follower(self.job.id)
        while True:
            async with self.client.event_stream(self.job.project, read_timeout) as stream:
                update = follower.read((await self.refresh()).job)
                if update is not None:
                    yield update
                if follower.done:
                    return
                async for data in stream:
                    update = follower.event(data)
                    if update is not None:
                        yield update
                        if follower.done:
                            await self.refresh()
                            return
            await asyncio.sleep(RESUBSCRIBE_S)
