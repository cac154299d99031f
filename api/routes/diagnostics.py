"""`GET /api/v1/jobs/{id}/diagnostics`: one job's diagnostic bundle, a zip (docs/contract.md §4.13).

It gathers what a person looking into the job needs, in one download: the job and its events, every step's
log, the job type's definition, the workers that ran its steps, the server's settings and the versions of
jobctl and its dependencies. `api.bundle` decides what of the settings may go in (nothing secret) and writes
the zip.

Who may download it: anyone who can see the job (a viewer is enough). Everything in it but the settings and the
versions is what a viewer can already read; the settings have no secret in them (docs/security.md).
"""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter, Depends, Response

from jobctl.api import bundle
from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import JobId, get_services
from jobctl.api.errors import COMMON_ERRORS, json_responses
from jobctl.api.routes.types import describe
from jobctl.api.schemas import Event, Job
from jobctl.scheduler import keys
from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.records import JobRecord
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import jobs as jobs_store

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["jobs"])

#: What `workers.json` says of the workers beyond what jobctl records.
WORKERS_NOTE = (
    "each step's worker is the Celery node that ran its latest attempt; `live` and `processes` come from the "
    "workers' registry (alive now, and how many processes it has); jobctl records no pid or version of a worker"
)


@router.get(
    "/{job_id}/diagnostics",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "a zip: manifest.json, job.json, events.json, job-type.json, workers.json, "
            "settings.json (no secrets), versions.json and logs/<index>-<step>.log for every step",
            "headers": {
                "Content-Disposition": {
                    "description": "attachment; filename=job-<id>-diagnostics.zip",
                    "schema": {"type": "string"},
                }
            },
        },
        **json_responses(*COMMON_ERRORS, 401, 404),
    },
    summary="A job's diagnostic bundle (zip)",
)
def job_diagnostics(
    job_id: str = JobId, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> Response:
    """Everything about the job one needs to look into it, as a zip to download: the job's JSON and its events
    (as `GET /jobs/{id}` and `/events` answer them), every step's whole log, its type's definition (as
    `GET /types` lists it), the workers that ran its steps, the server's settings without any secret, and the
    versions of jobctl, Python and the main dependencies. 404 if the caller cannot see the job; a viewer may."""
    job = services.db.query(lambda conn: jobs_store.get_job(conn, job_id))
    caller.require_visible(job.project, what=f"job {job_id!r}")
    with services.db.read() as s:
        events = jobs_store.job_events(s, job.id)
        logs = {step.index: jobs_store.step_log(s, job.id, step.index, None) for step in job.steps}
    made = bundle.Bundle(
        job_id=job.id,
        job=Job.from_record(job, services.settings.flower_base_url).model_dump(mode="json"),
        events=[Event.from_record(e).model_dump(mode="json", by_alias=True) for e in events],
        logs={bundle.log_name(s.index, s.name): "".join(f"{line}\n" for line in logs[s.index]) for s in job.steps},
        job_type=_job_type(services, job.type),
        settings=bundle.public_settings(services.settings),
        workers={"workers": _workers(services, job), "note": WORKERS_NOTE},
        versions=bundle.versions(),
    )
    return Response(
        bundle.zip_bundle(made),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="job-{job.id}-diagnostics.zip"'},
    )


def _job_type(services: Services, name: str) -> dict[str, Any]:
    """The type's definition as `GET /types` lists it, or why there is none (this server does not know it)."""
    try:
        return describe(services.registry.get(name)).model_dump(mode="json")
    except Invalid as exc:
        return {"name": name, "error": exc.message}


def _workers(services: Services, job: JobRecord) -> list[dict[str, Any]]:
    """Each worker that ran one of the job's steps (its latest attempt): its Celery node name, its host, those
    steps, and - from the workers' registry - whether it is alive and how many processes it has."""
    ran: dict[str, list[int]] = {}
    for step in job.steps:
        if step.worker:
            ran.setdefault(step.worker, []).append(step.index)
    found = []
    for name, steps in ran.items():
        try:
            processes = services.redis.get(keys.worker(services.settings.queue, name))
            live: bool | None = processes is not None
        except redis.RedisError:
            processes, live = None, None  # the registry cannot tell now
        host = name.partition("@")[2] or None
        count = int(processes) if processes is not None else None
        found.append({"name": name, "host": host, "steps": steps, "live": live, "processes": count})
    return found
