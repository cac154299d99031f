"""`GET /api/v1/events`: Server-Sent Events, one `job` event per change, for the caller's projects only.

Status changes are announced by whoever commits them (API, scheduler, worker) right after the commit and
before any follow-up work is sent, so they arrive in order; progress is announced by running steps a few
times a second. Redis pub/sub carries them to the process's one subscription (`jobctl.api.hub`), which hands
them to every open stream; a stream holds no state of its own beyond a bounded backlog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.hub import AccessLookup, EventHub, Shown, Subscriber
from jobctl.api.schemas import ProjectKey
from jobctl.scheduler.errors import NotFound
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"], responses=responses(401, 404, 422))

KEEPALIVE_S = 15.0
SEND_TIMEOUT_S = 10.0  # a client that takes nothing for this long is disconnected


@router.get(
    "/events",
    summary="Live job changes as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`event: job` with `data: {id, project, status, progress, step}` per change",
        }
    },
)
async def events(
    request: Request,
    project: list[ProjectKey] | None = Query(
        None, max_length=100, description="only these projects (default: every visible one)"
    ),
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
) -> StreamingResponse:
    """Stream a `job` event for every change of a job in a project the caller sees (and asked for); 404 (before
    the stream starts) for a project that does not exist or that the caller cannot see."""
    for name in project or []:
        caller.require_visible(name)
    if project:
        await run_in_threadpool(_require_projects, services, sorted(set(project)))
    wanted = set(project) if project else None
    visible = None if caller.admin else set(caller.roles)

    def shown(name: object) -> bool:
        return (wanted is None or name in wanted) and (visible is None or name in visible)

    return EventStreamResponse(
        _hub(request, services),
        shown,
        key=caller.key,
        access=caller.visible_projects(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _require_projects(services: Services, names: list[str]) -> None:
    """`NotFound` unless every one of `names` is a project."""
    with services.db.read() as s:
        found = {p.name for p in accounts.list_projects(s, names)}
    for name in names:
        if name not in found:
            raise NotFound(f"project {name!r} not found")


def _access(services: Services) -> AccessLookup:
    """The hub's check of its streams' callers: the projects each token's user sees now (`visible_projects`, as
    the stream was opened with); unknown tokens left out. Each token's read stands alone."""

    def lookup(token_hashes: Collection[str]) -> dict[str, object]:
        def read(conn: Connection) -> dict[str, object]:
            users = {key: accounts.user_by_token_hash(conn, key) for key in token_hashes}
            return {key: Caller.of(user, key).visible_projects() for key, user in users.items() if user is not None}

        return services.db.query(read)

    return lookup


def _hub(request: Request, services: Services) -> EventHub:
    """The app's hub on the running event loop (a test client may run the app on several loops, one at a time);
    the counts of the hubs it replaces carry over."""
    hub: EventHub | None = getattr(request.app.state, "event_hub", None)
    if hub is None or hub.loop is not asyncio.get_running_loop():
        replaced, hub = hub, EventHub(services.settings.redis_url, lookup=_access(services))
        if replaced is not None:
            hub.disconnected.update(replaced.disconnected)
        request.app.state.event_hub = hub
    return hub


class EventStreamResponse(StreamingResponse):
    """The stream of one caller: every change `shown` to it, from the process's hub, as Server-Sent Events.

    If Redis is lost (a restart), or the client falls `hub.backlog` changes behind, the stream ends cleanly rather
    than breaking off; a client that takes nothing for `SEND_TIMEOUT_S` (its connection's buffers are full) is
    disconnected. Either way the client reconnects and resyncs, since nothing kept what changed meanwhile. Each
    stream the server ends is counted once in `hub.disconnected`."""

    def __init__(
        self, hub: EventHub, shown: Shown, key: str | None = None, access: object = None, **kwargs: Any
    ) -> None:
        super().__init__(self._lines(), **kwargs)
        self.hub = hub
        self.shown = shown
        self.key = key
        self.access = access
        self.subscriber: Subscriber | None = None

    async def _lines(self) -> AsyncIterator[str]:
        try:
            self.subscriber = subscriber = await self.hub.subscribe(self.shown, self.key, self.access)
        except RedisError as exc:
            log.warning("event stream refused: Redis cannot be reached (%s)", exc)
            return
        try:
            yield ": connected\n\n"
            while (line := await subscriber.next(KEEPALIVE_S)) is not None:
                yield line or ": keepalive\n\n"
        finally:
            self.hub.unsubscribe(subscriber)

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            data = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
            await _send_body(send, data, more=True)
        await _send_body(send, b"", more=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except _NotReading:
            # The server closes the connection, since the response cannot be completed (uvicorn logs that too).
            log.warning("event stream disconnected: its client took nothing for %.0f s", SEND_TIMEOUT_S)
            if self.subscriber is None or self.subscriber.ended is None:  # not counted already by the hub
                self.hub.disconnected["not_reading"] += 1


async def _send_body(send: Send, data: bytes | memoryview, more: bool) -> None:
    try:
        async with asyncio.timeout(SEND_TIMEOUT_S):
            await send({"type": "http.response.body", "body": data, "more_body": more})
    except TimeoutError:
        raise _NotReading from None


class _NotReading(Exception):
    """The client has not read the stream for `SEND_TIMEOUT_S`."""
