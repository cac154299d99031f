"""The FastAPI application: `create_app()` wires the routers, the error mapping and the startup work. The
services come from the caller (`jobctl.processes.api_app` in production, the tests' own), so this package never
builds them and never loads Celery.

Startup bootstraps the first user (docs/contract.md §3): if no user exists, an admin called `admin` is created
with the token in `JOBCTL_ADMIN_TOKEN`, or with a generated token that is printed once to stdout. Only the token's
hash is stored; the token itself is never logged. A later change of `JOBCTL_ADMIN_TOKEN` rotates the admin's token
(`bootstrap_admin`).
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
from jobctl.api.auth import hash_token, token_prefix
from jobctl.api.cors import ConfiguredCORS
from jobctl.api.guard import RequestGuard
from jobctl.api.headers import SecurityHeaders
from jobctl.api.routes import (
    audit,
    diagnostics,
    docs,
    events,
    health,
    jobs,
    me,
    metrics,
    projects,
    stats,
    targets,
    tokens,
    types,
    ui,
    users,
    webhooks,
)
from jobctl.scheduler.errors import Conflict, NotFound
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
        docs_url=None,  # `docs.install` serves it, without a CDN
        redoc_url=None,
        lifespan=lifespan,
        responses=errors.responses(*errors.COMMON_ERRORS),
    )
    if services is not None:
        app.state.services = services
    errors.install(app)
    app.add_middleware(RequestGuard)  # oversized, malformed or NUL-bearing input never reaches a route
    app.add_middleware(ConfiguredCORS)  # JOBCTL_CORS_ORIGINS, read from the settings the app runs with
    app.add_middleware(SecurityHeaders)  # outermost: the guard's refusals and CORS preflights carry them too
    app.include_router(health.router)
    app.include_router(metrics.router)
    routers = (
        me.router,
        tokens.me_router,
        projects.router,
        targets.router,
        jobs.router,
        diagnostics.router,
        types.router,
        events.router,
        users.router,
        tokens.users_router,
        audit.router,
        webhooks.router,
        stats.router,
    )
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    ui.install(app)  # the web monitor: `/`, `/ui/config.json`, `/static/`
    docs.install(app)  # Swagger UI: `/docs`, its files under `/docs/static/`
    return app


def bootstrap_admin(services: Services) -> str | None:
    """If no user exists, create the admin `admin` and return its token; else return None.

    The token is `JOBCTL_ADMIN_TOKEN` if set; otherwise a generated one, printed once to stdout (the only
    place it ever appears). Safe to call from several processes at once: exactly one creates the user.

    Once users exist, a changed `JOBCTL_ADMIN_TOKEN` rotates the admin's token: the token named `default` of
    the user `admin` takes the new value and the old one stops working. Nothing else is touched: if that token
    was revoked, or the user deleted, the setting is ignored (an administrator's revocation is not undone by a
    restart).
    """
    configured = services.settings.admin_token
    with services.db.read() as s:
        if accounts.count_users(s):
            if configured:
                _rotate_admin_token(services, configured)
            return None
    token = configured or secrets.token_urlsafe(32)
    try:
        with services.db.write() as s:
            if accounts.count_users(s):
                return None
            accounts.create_user(s, ADMIN_NAME, hash_token(token), admin=True, prefix=token_prefix(token))
    except (Conflict, IntegrityError):  # another process created it first
        return None
    if configured:
        log.info("created the admin user %r with the token from JOBCTL_ADMIN_TOKEN", ADMIN_NAME)
    else:
        print(f"jobctl: created the admin user {ADMIN_NAME!r}; its token (shown only this once): {token}", flush=True)
    return token


def _rotate_admin_token(services: Services, token: str) -> None:
    """Give the admin's `default` token the value `token`, if the user and that token exist and it differs."""
    try:
        with services.db.write() as s:
            admin = accounts.get_user(s, ADMIN_NAME)
            token_hash, prefix = hash_token(token), token_prefix(token)
            changed = accounts.replace_token(s, admin.id, accounts.DEFAULT_TOKEN, token_hash, prefix)
    except NotFound:
        return
    if changed:
        log.info("the admin's token changed to the one in JOBCTL_ADMIN_TOKEN; the previous one no longer works")
