"""`/healthz` (liveness) and `/readyz` (readiness: the database and Redis answer). No authentication."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from jobctl.api.deps import get_services
from jobctl.api.schemas import Health, Readiness
from jobctl.scheduler.services import Services

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz() -> Health:
    """Always 200 `{"status": "ok"}` while the process serves requests."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "the database or Redis does not answer"}},
    summary="Readiness: the database and Redis answer",
)
def readyz(services: Services = Depends(get_services)) -> JSONResponse:
    """200 if the database and Redis both answer, else 503; `checks` names the one(s) that failed."""
    checks: dict[str, str] = {}
    try:
        services.db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the detail goes to the log, not the client
        log.warning("readiness: database check failed: %s", exc)
        checks["database"] = f"failed ({type(exc).__name__})"
    try:
        services.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        log.warning("readiness: redis check failed: %s", exc)
        checks["redis"] = f"failed ({type(exc).__name__})"
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
