"""Calling a jobctl server from Python, over its HTTP API. Needs only httpx and pydantic: importing it loads
neither SQLAlchemy, Celery nor FastAPI.

    from jobctl.client import Client
    c = Client.from_env()                      # JOBCTL_URL, JOBCTL_TOKEN
    job = c.submit("sleep", project="demo", params={"seconds": 1})
    print(job.result(timeout=60))

docs/contract.md (section 8) describes it whole; the README's "Use jobctl from Python" shows it at work.
"""

from jobctl.client._async import AsyncClient, AsyncJobHandle, AsyncTargets
from jobctl.client._calls import OPERATIONS
from jobctl.client._errors import (
    ApiError,
    BadAnswer,
    Conflict,
    Error,
    Forbidden,
    Invalid,
    JobDiscarded,
    JobFailed,
    NotFound,
    Unauthorized,
    Unreachable,
)
from jobctl.client._http import ServerEvent, default_url, parse_sse
from jobctl.client._models import (
    BatchResult,
    Event,
    Job,
    JobPage,
    JobQuery,
    JobStatus,
    JobTarget,
    JobType,
    JobUpdate,
    Me,
    NewUser,
    Project,
    Step,
    StepInfo,
    Target,
    TargetDeleted,
    User,
)
from jobctl.client._sync import Client, JobHandle, Targets

__all__ = [  # noqa: RUF022 - grouped by use
    # clients and handles
    "Client",
    "JobHandle",
    "Targets",
    "AsyncClient",
    "AsyncJobHandle",
    "AsyncTargets",
    "default_url",
    "OPERATIONS",
    # errors
    "Error",
    "ApiError",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "Conflict",
    "Invalid",
    "Unreachable",
    "BadAnswer",
    "JobFailed",
    "JobDiscarded",
    # what the server answers
    "Job",
    "JobStatus",
    "JobTarget",
    "Step",
    "JobPage",
    "JobQuery",
    "JobUpdate",
    "Event",
    "BatchResult",
    "JobType",
    "StepInfo",
    "Target",
    "TargetDeleted",
    "Project",
    "Me",
    "User",
    "NewUser",
    # the event stream's format
    "ServerEvent",
    "parse_sse",
]
