"""Calling a jobctl server from Python, over its HTTP API. Needs only httpx and pydantic: importing it loads
neither SQLAlchemy, Celery nor FastAPI, nor any other part of jobctl.

    from jobctl.client import Client, JobFailed

    with Client.from_env() as c:                    # JOBCTL_URL (else 127.0.0.1:$JOBCTL_API_PORT), JOBCTL_TOKEN
        job = c.submit("sleep", project="demo", params={"steps": 2, "seconds": 1})
        print(job.result(timeout=60))               # {'slept': 1.0}; JobFailed on ERROR, JobDiscarded

Everything named in `__all__` is the public surface; the `_` modules behind it may change. `AsyncClient` has
the same methods as `Client`, as coroutines. Every failed call raises a `jobctl.client.Error`.
docs/contract.md (section 8) describes it whole.
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
    AuditEntry,
    AuditPage,
    BatchResult,
    DayStats,
    Delivery,
    DeliveryEvent,
    DeliveryPage,
    Event,
    Job,
    JobPage,
    JobQuery,
    JobStatus,
    JobTarget,
    JobType,
    JobUpdate,
    Me,
    NewToken,
    NewUser,
    NewWebhook,
    Project,
    Stats,
    Step,
    StepError,
    StepInfo,
    Target,
    TargetDeleted,
    Token,
    TypeStats,
    User,
    Webhook,
)
from jobctl.client._sync import Client, JobHandle, Targets
from jobctl.client._webhooks import AsyncWebhooks, Webhooks

__all__ = [  # noqa: RUF022 - grouped by use
    # clients and job handles
    "Client",
    "JobHandle",
    "Targets",
    "AsyncClient",
    "AsyncJobHandle",
    "AsyncTargets",
    "Webhooks",
    "AsyncWebhooks",
    "default_url",
    "OPERATIONS",
    # errors: all are `Error`s
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
    # what the server answers (pydantic models; fields a newer server adds are kept)
    "Job",
    "JobStatus",
    "JobTarget",
    "Step",
    "StepError",
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
    "Token",
    "NewToken",
    "AuditEntry",
    "AuditPage",
    "Webhook",
    "NewWebhook",
    "Delivery",
    "DeliveryEvent",
    "DeliveryPage",
    "Stats",
    "TypeStats",
    "DayStats",
    # the event stream's format
    "ServerEvent",
    "parse_sse",
]
