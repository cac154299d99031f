"""FastAPI dependencies shared by every router: the process's services."""

from __future__ import annotations

from fastapi import Request

from jobctl.scheduler.services import Services


def get_services(request: Request) -> Services:
    """The `Services` the app was created with (set on `app.state.services` at startup)."""
    services: Services = request.app.state.services
    return services
