"""`GET /metrics`: Prometheus exposition of jobctl's metrics (see `scheduler.metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.scheduler.metrics import JobctlCollector
from jobctl.scheduler.services import Services

router = APIRouter(tags=["health"], responses=responses(401))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(caller: Caller = Depends(current_user), services: Services = Depends(get_services)) -> Response:
    """Jobs by project and status (only the caller's projects unless admin), step duration and waiting
    histograms, dispatch and stop latency, the queue depth and the live workers, in the Prometheus text
    format. Scrape it with a bearer token (Prometheus `authorization` in the scrape config)."""
    registry = CollectorRegistry(auto_describe=False)
    visible = None if caller.admin else set(caller.roles)
    registry.register(JobctlCollector(services.db, services.redis, services.settings.queue, visible))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
