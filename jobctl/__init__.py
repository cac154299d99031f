"""jobctl: long, multi-step background jobs on Celery workers, operated like a job monitor.

Everything an application writes against is exported here (authoring job types) and from `jobctl.client`
(calling a jobctl server over HTTP). The subpackages `jobctl.scheduler`, `jobctl.workers`, `jobctl.api` and
`jobctl.bench` are internal and may change. docs/authoring.md is the reference.

The names below are loaded on first use, so `import jobctl.client` loads neither SQLAlchemy, Celery nor
FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [  # noqa: RUF022 - grouped by use, as the docs present them
    # declaring a job type
    "JobType",
    "Params",
    "Retry",
    "Step",
    # what a step and a cleanup see
    "Context",
    "JobInfo",
    "Target",
    # how a step ends early
    "StepFailed",
    "StepStopped",
    "__version__",
]

_WHERE = {
    "JobType": "jobctl.workers.registry",
    "Params": "jobctl.workers.registry",
    "Retry": "jobctl.workers.registry",
    "Step": "jobctl.workers.registry",
    "Context": "jobctl.workers.context",
    "JobInfo": "jobctl.workers.context",
    "Target": "jobctl.workers.context",
    "StepFailed": "jobctl.workers.context",
    "StepStopped": "jobctl.workers.context",
}
_NAMES = {"Context": "StepContext"}

if TYPE_CHECKING:
    from jobctl.workers.context import JobInfo, StepFailed, StepStopped, Target
    from jobctl.workers.context import StepContext as Context
    from jobctl.workers.registry import JobType, Params, Retry, Step


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'jobctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _NAMES.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
