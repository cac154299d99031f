"""FastAPI dependencies shared by several routers: the process's services, and the job id path parameter."""

from __future__ import annotations

from fastapi import Path, Request

from jobctl.scheduler.services import Services

#: `{job_id}` in a route's path (the job routes, the diagnostic bundle's)
JobId = Path(min_length=1, max_length=64, description="the job's id")


async def get_services(request: Request) -> Services:
    """The `Services` the app was created with (set on `app.state.services` at startup).

    `async` only so that FastAPI calls it on the event loop: a plain function would cost each request a hop to
    the thread pool and back (as would every other dependency that neither blocks nor waits)."""
    services: Services = request.app.state.services
    return services
