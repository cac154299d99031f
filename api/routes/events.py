"""`GET /api/v1/events`: Server-Sent Events, one `job` event per change, for the caller's projects only.

Status changes are announced by whoever commits them (API, scheduler, worker) right after the commit and
before any follow-up work is sent, so they arrive in order; progress is announced by running steps a few
times a second. Redis pub/sub carries them; the stream holds no state of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import ProjectKey
from jobctl.scheduler import keys
from jobctl.scheduler.errors import NotFound
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import accounts

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"], responses=responses(401, 404, 422))

KEEPALIVE_S = 15.0


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

    def shown(message: dict[str, object]) -> bool:
        name = message.get("project")
        return (wanted is None or name in wanted) and (visible is None or name in visible)

    return StreamingResponse(
        _stream(services.settings.redis_url, shown),
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


async def _stream(redis_url: str, shown: Callable[[dict[str, object]], bool]) -> AsyncIterator[str]:
    """The stream's lines. If Redis is lost (a restart), the stream ends cleanly rather than breaking off: the
    client reconnects, and resyncs, since pub/sub kept nothing of what changed meanwhile."""
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    lost = False
    try:
        await pubsub.subscribe(keys.EVENTS)
        yield ": connected\n\n"
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=KEEPALIVE_S)
            if message is None:
                yield ": keepalive\n\n"
                continue
            data = json.loads(message["data"])
            if shown(data):
                yield f"event: job\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
    except RedisError as exc:
        lost = True
        log.warning("event stream ended: Redis connection lost (%s)", exc)
    finally:
        if not lost:
            with contextlib.suppress(RedisError):
                await pubsub.unsubscribe()
        await pubsub.aclose()
        await client.aclose()
