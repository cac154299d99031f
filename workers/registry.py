"""Job types: ordered steps with weights, parameters, a retry policy and a cleanup hook.

A job type is registered once, at import, with `registry.register(JobType(...))`; `sleep` and
`file_digest` are built in (`workers.jobtypes`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.records import StepSpec

if TYPE_CHECKING:
    from jobctl.workers.context import StepContext

StepFn = Callable[["StepContext"], dict[str, Any] | None]


class Params(BaseModel):
    """Base of job-type parameter models: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class StepDef:
    name: str
    run: StepFn
    weight: float = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a step gets when it raises, and when its worker is lost. A decision, not an action."""

    error_attempts: int = 1
    lost_attempts: int = 2

    def retry_error(self, attempt: int, exc: BaseException) -> bool:
        """Whether a step that raised `exc` on attempt `attempt` (from 1) is tried again."""
        return attempt < self.error_attempts

    def retry_lost(self, attempt: int) -> bool:
        """Whether a step whose worker died during attempt `attempt` is tried again."""
        return attempt < self.lost_attempts


@dataclass(frozen=True)
class JobType:
    name: str
    params: type[Params]
    steps: Callable[[Params], Sequence[StepDef]]
    target_kind: str | None = None  # None: a target of any kind is allowed (optional); else this kind only
    target_required: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cleanup: Callable[[str], None] | None = None  # called with the job id after discard and restart
    exclusive: str | None = None  # "target": at most one RUNNING job per target

    def step_list(self) -> list[StepSpec] | None:
        """The declared steps (name, weight), or None when the steps are planned from the params."""
        return None

    def parse(self, raw: dict[str, Any] | None) -> Params:
        """Validated parameters; `Invalid` with pydantic's explanation otherwise."""
        try:
            return self.params.model_validate(raw or {})
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors())
            raise Invalid(f"invalid params for job type {self.name!r}: {details}") from None

    def plan(self, raw: dict[str, Any] | None) -> tuple[dict[str, Any], list[StepSpec]]:
        """The validated params (as stored) and the step list a job with them will have; `Invalid` if that list
        is empty (a job runs at least one step)."""
        params = self.parse(raw)
        specs = [StepSpec(s.name, s.weight) for s in self.steps(params)]
        if not specs:
            raise Invalid(f"job type {self.name!r} planned no steps for these params")
        return params.model_dump(mode="json"), specs

    def step(self, params: dict[str, Any], index: int) -> StepDef:
        return list(self.steps(self.parse(params)))[index]


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def register(self, job_type: JobType) -> JobType:
        self._types[job_type.name] = job_type
        return job_type

    def get(self, name: str) -> JobType:
        """The job type called `name`; `Invalid` if none is registered."""
        try:
            return self._types[name]
        except KeyError:
            raise Invalid(f"unknown job type {name!r}; known: {', '.join(sorted(self._types))}") from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def types(self) -> list[JobType]:
        """Every registered job type, by name."""
        return [self._types[n] for n in sorted(self._types)]

    def check_target(self, job_type: JobType, target: tuple[str, str] | None) -> None:
        """`Invalid` unless the target fits what the job type declares."""
        if target is None:
            if job_type.target_required:
                raise Invalid(f"job type {job_type.name!r} needs a {job_type.target_kind} target")
            return
        if job_type.target_kind is not None and target[0] != job_type.target_kind:
            raise Invalid(f"job type {job_type.name!r} works on {job_type.target_kind} targets, not {target[0]!r}")


registry = Registry()


def load_plugins(modules: str) -> None:
    """Import the built-in job types and each module named in `modules` (comma-separated), which register
    their own job types on import. An unknown module raises ImportError: a misspelt plugin must not pass."""
    importlib.import_module("jobctl.workers.jobtypes")
    for name in filter(None, (m.strip() for m in modules.split(","))):
        importlib.import_module(name)
