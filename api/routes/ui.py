"""The web job monitor (docs/contract.md §7): the page at `/`, its assets under `/static/`, and `/ui/config.json`.

The page is plain HTML, CSS and ES modules with no build step; everything it shows comes from the HTTP API
with the user's token, which the page keeps in `sessionStorage` and never puts in a URL. The page itself and
its assets hold nothing secret, so they are served without authentication.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from jobctl.api.deps import get_services
from jobctl.scheduler.services import Services
from jobctl.scheduler.store.jobs import SORTS
from jobctl.states import OPERATIONS, Action, JobStatus, allowed_from, target_of

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["web monitor"])


class UIConfig(BaseModel):
    """What the page needs before it signs in. The lists come from their one definition (`jobctl.states`, the
    store's sort keys), so the page holds none of its own (docs/contract.md §7)."""

    flower_url: str = Field(description="Flower's base URL as users reach it (`JOBCTL_FLOWER_URL`)")
    statuses: list[JobStatus] = Field(description="every job and step state, in the order the page shows them")
    operations: list[str] = Field(description="the user operations, in the order the page offers them")
    irreversible: list[str] = Field(
        description="the operations that cannot be undone (they end or remove the job): the page asks first"
    )
    sorts: list[str] = Field(description="the list's sort keys (`GET /api/v1/jobs?sort=`; a leading `-` reverses)")
    editable: list[JobStatus] = Field(
        description="the states in which a job's params may be edited (`PATCH /api/v1/jobs/{id}`): the page offers it"
    )


def _irreversible(operation: Action) -> bool:
    """True if `operation` leads to a final state or removes the job."""
    target = target_of(operation)
    return target is None or target.final


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
def index() -> FileResponse:
    """The job monitor page. It must be revalidated, so a new version of its assets is picked up at once."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/ui/config.json", response_model=UIConfig, summary="What the web monitor needs to know (no secrets)")
def ui_config(services: Services = Depends(get_services)) -> UIConfig:
    """Flower's base URL (`JOBCTL_FLOWER_URL`, the one the job JSON links to; never taken from the request, whose
    `Host` header the client chooses), and the states, operations and sort keys the page shows."""
    return UIConfig(
        flower_url=services.settings.flower_base_url,
        statuses=list(JobStatus),
        operations=[op.value for op in OPERATIONS],
        irreversible=[op.value for op in OPERATIONS if _irreversible(op)],
        sorts=list(SORTS),
        editable=[status for status in JobStatus if status in allowed_from(Action.EDIT)],
    )


def install(app: FastAPI) -> None:
    """Serve the monitor: the page and its config through `router`, its assets as static files."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
