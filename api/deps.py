"""FastAPI dependencies shared by every router: the process's services."""

from __future__ import annotations

from fastapi import Request

from jobctl.scheduler.services import Services


async def get_services(request: Request) -> Services:
    """The `Services` the app was created with (set on `app.state.services` at startup).

    `async` only so that FastAPI calls it on the event loop: a plain function would cost each request a hop to
    the thread pool and back (as would every other dependency that neither blocks nor waits)."""
    services: Services = request.app.state.services
    return services
