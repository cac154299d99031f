"""`GET /metrics`: Prometheus exposition of jobctl's metrics (see `scheduler.metrics`)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.hub import EventHub
from jobctl.scheduler.metrics import JobctlCollector
from jobctl.scheduler.services import Services

router = APIRouter(tags=["health"], responses=responses(401))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(
    request: Request, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Response:
    """For an admin: jobs by project and status, step duration and waiting histograms, dispatch and stop latency,
    transitions, the queue depth, the broker's queue, the live workers and this API process's event streams. For
    anyone else: the jobs by status and the queue depth of their own projects only (the rest is the whole
    system's). In the Prometheus text format; scrape it with a bearer token (Prometheus `authorization`)."""
    registry = CollectorRegistry(auto_describe=False)
    visible = None if caller.admin else set(caller.roles)
    registry.register(JobctlCollector(services.db, services.redis, services.settings.queue, visible))
    if caller.admin:  # a process-wide figure, not one project's
        registry.register(_StreamsCollector(getattr(request.app.state, "event_hub", None)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _StreamsCollector(Collector):
    """The event streams of the answering API process (with `jobctl api --workers N`, of one of the N)."""

    def __init__(self, hub: EventHub | None) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "jobctl_event_streams",
            "Open event streams of this API process",
            value=self.hub.subscribers if self.hub else 0,
        )
        ended = CounterMetricFamily(
            "jobctl_event_streams_disconnected",
            "Event streams this API process ended: slow (fell behind), not_reading, redis (connection lost), access "
            "(the caller's access changed)",
            labels=["reason"],
        )
        for reason in ("slow", "not_reading", "redis", "access"):
            ended.add_metric([reason], self.hub.disconnected[reason] if self.hub else 0)
        yield ended
