"""The FastAPI application: `create_app()` wires the routers, the error mapping and the startup work. The
services come from the caller (`jobctl.processes.api_app` in production, the tests' own), so this package never
builds them and never loads Celery.

Startup bootstraps the first user (docs/contract.md §3): if no user exists, an admin called `admin` is created
with the token in `JOBCTL_ADMIN_TOKEN`, or with a generated token that is printed once to stdout. Only the token's
hash is stored; the token itself is never logged.
"""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError

from jobctl.api import errors
from jobctl.api.auth import hash_token
from jobctl.api.guard import RequestGuard
from jobctl.api.headers import SecurityHeaders
from jobctl.api.routes import events, health, jobs, me, metrics, projects, targets, types, ui, users
from jobctl.scheduler.errors import Conflict
from jobctl.scheduler.services import Services
from jobctl.scheduler.settings import Settings, get_settings
from jobctl.scheduler.store import accounts

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
ADMIN_NAME = "admin"
# The routes and dependencies that touch the database run on at most this many threads of the process (anyio's
# default is 40). More threads only contend for the GIL and the connection pool: with 32 clients reading, 6
# threads served 1.3x the requests of 40, at two thirds of the p99 (paired probe, docs/benchmark-checks.md).
# The services' pools hold this many connections (`jobctl.processes.api_app`).
THREADS = 6


def create_app(services: Services | None = None, *, build: Callable[[Settings], Services] | None = None) -> FastAPI:
    """A ready-to-serve jobctl API.

    With `services`, the app uses them as they are (the caller owns and closes them) and the first admin is
    bootstrapped right away, so the app works with or without its lifespan being run (e.g. a plain
    `TestClient(app)`). With `build` instead, the lifespan reads `get_settings()`, refuses unsafe production
    settings, builds the services with `build(settings)`, bootstraps the admin and closes the services at
    shutdown. With neither, the app can describe itself (`app.openapi()`) but not start.
    """
    if services is not None:
        bootstrap_admin(services)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        if services is not None:
            app.state.services = services
            yield
            return
        if build is None:
            raise RuntimeError("create_app() needs the services or a function that builds them")
        settings = get_settings()
        settings.check_safe()
        built = build(settings)
        try:
            bootstrap_admin(built)
            app.state.services = built
            # What start-up made lives as long as the process: out of the collector's way, a full collection
            # no longer walks it (a bulk submission of 1,000 jobs triggers several; paired A/B: 0.87x the time).
            gc.freeze()
            yield
        finally:
            built.close()

    app = FastAPI(
        title="jobctl",
        summary="Run long, multi-step background jobs and operate them like a job monitor.",
        version="1",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
        responses=errors.responses(*errors.COMMON_ERRORS),
    )
    if services is not None:
        app.state.services = services
    errors.install(app)
    app.add_middleware(RequestGuard)  # oversized, malformed or NUL-bearing input never reaches a route
    app.add_middleware(SecurityHeaders)  # outermost of the two: the guard's refusals carry the headers too
    app.include_router(health.router)
    app.include_router(metrics.router)
    routers = (me.router, projects.router, targets.router, jobs.router, types.router, events.router, users.router)
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    ui.install(app)  # the web monitor: `/`, `/ui/config.json`, `/static/`
    return app


def bootstrap_admin(services: Services) -> str | None:
    """If no user exists, create the admin `admin` and return its token; else change nothing and return None.

    The token is `JOBCTL_ADMIN_TOKEN` if set; otherwise a generated one, printed once to stdout (the only
    place it ever appears). Safe to call from several processes at once: exactly one creates the user.
    """
    with services.db.read() as s:
        if accounts.count_users(s):
            return None
    configured = services.settings.admin_token
    token = configured or secrets.token_urlsafe(32)
    try:
        with services.db.write() as s:
            if accounts.count_users(s):
                return None
            accounts.create_user(s, ADMIN_NAME, hash_token(token), admin=True)
    except (Conflict, IntegrityError):  # another process created it first
        return None
    if configured:
        log.info("created the admin user %r with the token from JOBCTL_ADMIN_TOKEN", ADMIN_NAME)
    else:
        print(f"jobctl: created the admin user {ADMIN_NAME!r}; its token (shown only this once): {token}", flush=True)
    return token
