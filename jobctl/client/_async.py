"""`AsyncClient` and `AsyncJobHandle`: `Client` and `JobHandle` with coroutines, over `httpx.AsyncClient`. They
send the same `Call`s (`_calls`) and wait by the same rules (`_wait`)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx

from jobctl.client import _calls as calls
from jobctl.client._calls import Call
from jobctl.client._errors import Unreachable
from jobctl.client._http import API, SSEParser, asend, default_url, error_of, headers, job_data, reason
from jobctl.client._models import (
    BatchResult,
    Event,
    Job,
    JobQuery,
    JobStatus,
    JobType,
    JobUpdate,
    Step,
    Target,
    TargetDeleted,
)
from jobctl.client._wait import intervals, outcome, timed_out

T = TypeVar("T")


class AsyncClient:
    """`Client` with coroutines: the same arguments, the same answers and errors."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.token = token
        self._owned = http is None
        self.http = http if http is not None else httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self.targets = AsyncTargets(self)

    @classmethod
    def from_env(cls, **kwargs: Any) -> AsyncClient:
        """A client of `JOBCTL_URL` (or the local API on `JOBCTL_API_PORT`) with the token in `JOBCTL_TOKEN`."""
        return cls(None, os.environ.get("JOBCTL_TOKEN") or None, **kwargs)

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def call(self, call: Call[T]) -> T:
        return await asend(self.http, self.url, self.token, call)

    async def submit(
        self,
        type: str,
        *,
        project: str,
        params: Mapping[str, Any] | None = None,
        target: tuple[str, str] | None = None,
        priority: int | None = None,
    ) -> AsyncJobHandle:
        job = await self.call(calls.submit(calls.submission(type, project, params, target, priority)))
        return AsyncJobHandle(self, job)

    async def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> list[AsyncJobHandle]:
        return [AsyncJobHandle(self, job) for job in await self.call(calls.submit_many(jobs))]

    async def job(self, job_id: str) -> AsyncJobHandle:
        return AsyncJobHandle(self, await self.call(calls.get_job(job_id)))

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
    ) -> AsyncIterator[AsyncJobHandle]:
        query = JobQuery(
            _names(project), _names(status), type, q, period, since, until, sort, page=1, page_size=page_size
        )
        while True:
            page = await self.call(calls.list_jobs(query))
            for job in page.items:
                yield AsyncJobHandle(self, job)
            if query.page * query.page_size >= page.total or not page.items:
                return
            query = JobQuery(**{**query.__dict__, "page": query.page + 1})

    async def batch(
        self,
        action: str,
        ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        atomic: bool = False,
    ) -> list[BatchResult]:
        return await self.call(calls.batch(action, ids, filter, atomic))

    async def types(self) -> list[JobType]:
        return await self.call(calls.types())

    @asynccontextmanager
    async def event_stream(
        self, project: str, read_timeout: float | None = 60
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """The project's event stream, open (subscribed) on entering: the data of its `job` events."""
        timeout = httpx.Timeout(10, read=read_timeout)
        try:
            async with self.http.stream(
                "GET", f"{API}/events", params={"project": project}, headers=headers(self.token), timeout=timeout
            ) as answer:
                if answer.is_error:
                    await answer.aread()
                    raise error_of(answer)
                yield _job_events(answer)
        except httpx.HTTPError as exc:
            raise Unreachable(f"the event stream of {self.url} broke: {reason(exc)}") from exc
        except json.JSONDecodeError as exc:
            raise Unreachable(f"the event stream of {self.url} sent something that is not JSON: {exc}") from exc


async def _job_events(answer: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    parser = SSEParser()
    async for line in answer.aiter_lines():
        event = parser.feed(line)
        data = job_data(event) if event is not None else None
        if data is not None:
            yield data


class AsyncTargets:
    """`client.targets` of an `AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, project: str) -> list[Target]:
        return await self._client.call(calls.list_targets(project))

    async def put(
        self, project: str, name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "record"
    ) -> Target:
        return await self._client.call(calls.put_target(project, name, attributes, kind))

    async def delete(self, project: str, name: str, *, kind: str = "record") -> TargetDeleted | None:
        return await self._client.call(calls.delete_target(project, name, kind))


class AsyncJobHandle:
    """`JobHandle` with coroutines."""

    def __init__(self, client: AsyncClient, job: Job) -> None:
        self.client = client
        self.job = job

    def __repr__(self) -> str:
        return f"<AsyncJobHandle {self.job.id} {self.job.type} {self.job.status.value} {self.job.progress:g}%>"

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

    def __getattr__(self, name: str) -> Any:
        if name == "job":
            raise AttributeError(name)
        return getattr(self.job, name)

    async def refresh(self) -> AsyncJobHandle:
        self.job = await self.client.call(calls.get_job(self.job.id))
        return self

    async def wait(self, timeout: float | None = None) -> AsyncJobHandle:
        deadline = None if timeout is None else time.monotonic() + timeout
        for pause in intervals():
            if (await self.refresh()).job.status.ended:
                return self
            if deadline is not None and time.monotonic() + pause > deadline:
                raise timed_out(self.job, timeout or 0)
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def result(self, timeout: float | None = None) -> Any:
        return outcome((await self.wait(timeout)).job)

    async def pause(self) -> AsyncJobHandle:
        return await self._operate("pause")

    async def resume(self) -> AsyncJobHandle:
        return await self._operate("resume")

    async def restart(self) -> AsyncJobHandle:
        return await self._operate("restart")

    async def discard(self) -> AsyncJobHandle:
        return await self._operate("discard")

    async def delete(self) -> None:
        await self.client.call(calls.operate(self.job.id, "delete"))

    async def _operate(self, operation: str) -> AsyncJobHandle:
        job = await self.client.call(calls.operate(self.job.id, operation))
        if job is not None:
            self.job = job
        return self

    async def events(self) -> list[Event]:
        return await self.client.call(calls.events(self.job.id))

    async def log(self, step: int = 0, tail: int | None = None) -> str:
        return await self.client.call(calls.log(self.job.id, step, tail))

    async def watch(self, read_timeout: float | None = 60) -> AsyncIterator[JobUpdate]:
        async with self.client.event_stream(self.job.project, read_timeout) as stream:
            if (await self.refresh()).job.status.final:
                yield JobUpdate(
                    id=self.job.id, project=self.job.project, status=self.job.status, progress=self.job.progress
                )
                return
            async for data in stream:
                if data.get("id") != self.job.id:
                    continue
                update = JobUpdate.model_validate(data)
                yield update
                if update.status.final:
                    await self.refresh()
                    return


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)
