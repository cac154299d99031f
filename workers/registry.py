"""Job types: typed params, ordered steps (declared with decorators, or planned from the params), a retry
policy, a step timeout, target exclusivity and a cleanup hook. The public face of this module is `jobctl`
(`jobctl.JobType`, `jobctl.Retry`, `jobctl.Params`, `jobctl.Step`); docs/authoring.md is the reference.

A job type registers itself in `registry` when it is created, so a plugin module only has to be imported
(`load_plugins`). The built-in ones (`workers.jobtypes`) are registered by whoever imports that module (the
wiring, `jobctl.wiring`): this module imports no job type.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import random
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.records import StepSpec
from jobctl.workers.context import JobInfo

if TYPE_CHECKING:  # a type only: importing it would load the database and Redis layers into every plugin
    from jobctl.scheduler.services import JobTypeInfo


class Params(BaseModel):
    """Base of job-type parameter models: unknown fields are refused (422 at submission)."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=Params)
Out = TypeVar("Out")

#: A target kind meaning "an optional target of any kind" (the built-in `sleep`, for auto-discard demos).
ANY_TARGET = "any"
EXCLUSIVE_TARGET = "target"


@dataclass(frozen=True)
class Step(Generic[Out]):
    """One step of a job type: its name, its code, its weight in the job's progress and its timeout.

    Calling a `Step` calls its code, so a decorated function can still be called directly (in a unit test).
    What the code returns is the step's output: a pydantic model, a dict, or None (stored as JSON)."""

    name: str
    run: Callable[..., Out]
    weight: float = 1.0
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", float(self.weight))
        if not self.name or len(self.name) > 64:
            raise ValueError(f"a step name has 1 to 64 characters, not {self.name!r}")
        if not self.weight > 0:
            raise ValueError(f"step {self.name!r}: weight must be above 0, not {self.weight}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"step {self.name!r}: timeout_s must be above 0, not {self.timeout_s}")

    def __call__(self, ctx: Any) -> Out:
        return self.run(ctx)

    @property
    def output_model(self) -> type[BaseModel] | None:
        """The pydantic model the code's return annotation names, if it names one (outputs are read back as it)."""
        return _output_model(self.run)


@functools.cache  # one annotation lookup per step function, not one per `ctx.output` call
def _output_model(fn: Callable[..., Any]) -> type[BaseModel] | None:
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # an annotation that does not resolve: outputs are plain JSON
        return None
    return hint if inspect.isclass(hint) and issubclass(hint, BaseModel) else None


def to_output(step: Step[Any], value: Any) -> dict[str, Any] | None:
    """A step's return value as stored: a model as its JSON, a dict as it is (if JSON can hold it), None.
    `TypeError` otherwise: the attempt fails with that message and the code `invalid_output`."""
    if value is None:
        return None
    if isinstance(value, dict):
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"step {step.name!r} returned a dict that JSON cannot hold ({exc}); return a model"
            ) from None
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"step {step.name!r} returned a {type(value).__name__}; return a pydantic model, a dict or None")


class StepsChanged(ValueError):
    """A job's step is no longer the job type's step at its position: the type's steps changed since the job was
    submitted (the attempt fails with code `type_changed`)."""


@dataclass(frozen=True)
class Retry:
    """How often a failing step runs again, and when.

    A step that raises gets `attempts` attempts in all; attempt n+1 starts
    `min(max_delay_s, backoff_s * 2**(n-1))` seconds after attempt n failed, plus up to `jitter` of that
    (never less than the backoff). While it waits its job is PENDING and holds no worker slot. A step whose
    worker died gets `lost_attempts` attempts in all, sent again at once."""

    attempts: int = 1
    backoff_s: float = 0.0
    max_delay_s: float = 60.0
    jitter: float = 0.1
    lost_attempts: int = 2

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.lost_attempts < 1:
            raise ValueError("Retry: attempts and lost_attempts are at least 1")
        if self.backoff_s < 0 or self.max_delay_s < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("Retry: backoff_s and max_delay_s are at least 0, jitter between 0 and 1")

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait before the attempt after failed attempt `attempt` (from 1); None: no more attempts."""
        if attempt >= self.attempts:
            return None
        base = min(self.max_delay_s, self.backoff_s * 2 ** (attempt - 1))
        return base * (1 + random.uniform(0, self.jitter))

    def retry_lost(self, attempt: int) -> bool:
        """Whether a step whose worker died during attempt `attempt` (from 1) is tried again."""
        return attempt < self.lost_attempts


Cleanup = Callable[[JobInfo[Any], str], None]
Planner = Callable[[Any], Sequence[Step[Any]]]


class JobType(Generic[P]):
    """A job type: `JobType("export", params=ExportParams, target="record")`, then its steps with `@step`.

    - `params`: a `Params` model; a submission's params are validated against it once, at submission.
    - `target`: None (the job takes no target), a kind (`"record"`, `"file"`, a registered kind: required),
      or `"any"` (optional, any kind).
    - `retry`: a `Retry` policy; `exclusive="target"`: a job of this type does not start while another job
      on the same target is RUNNING (it waits PENDING).
    Creating it registers it (`registry`); `register=False` keeps it out (tests)."""

    def __init__(
        self,
        name: str,
        *,
        params: type[P] = Params,  # type: ignore[assignment]
        target: str | None = None,
        retry: Retry | None = None,
        exclusive: str | None = None,
        register: bool = True,
    ) -> None:
        if not name or len(name) > 64:
            raise ValueError(f"a job type name has 1 to 64 characters, not {name!r}")
        if not (inspect.isclass(params) and issubclass(params, BaseModel)):
            raise TypeError(f"job type {name!r}: params must be a pydantic model (subclass jobctl.Params)")
        if exclusive not in (None, EXCLUSIVE_TARGET):
            raise ValueError(f"job type {name!r}: exclusive is None or 'target', not {exclusive!r}")
        if exclusive and target is None:
            raise ValueError(f"job type {name!r}: exclusive='target' needs a target kind")
        self.name = name
        self.params = params
        self.target_kind = None if target in (None, ANY_TARGET) else target
        self.target_required = target not in (None, ANY_TARGET)
        self.target_allowed = target is not None
        self.retry = retry or Retry()
        self.exclusive = exclusive
        self._steps: list[Step[Any]] = []
        self._planner: Planner | None = None
        self._cleanup: Cleanup | None = None
        #: The module that declared it (`register` refuses another module's type of the same name).
        self.module: str = sys._getframe(1).f_globals.get("__name__", "?")
        if register:
            registry.register(self)

    def __repr__(self) -> str:
        return f"JobType({self.name!r})"

    # -- declaring ------------------------------------------------------------------------------------

    def step(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        weight: float = 1.0,
        timeout_s: float | None = None,
    ) -> Any:
        """Decorator: add a step (named after the function unless `name`); steps run in declaration order.
        `weight`: its share of the job's progress; `timeout_s`: an attempt running longer is stopped and
        fails. Returns the `Step` (pass it to `ctx.output` to read what it returned)."""

        def add(fn: Callable[..., Any]) -> Step[Any]:
            step = Step(name or fn.__name__, fn, weight, timeout_s)
            if any(s.name == step.name for s in self._steps):
                raise ValueError(f"job type {self.name!r} has a step named {step.name!r} already")
            self._steps.append(step)
            return step

        return add(fn) if fn is not None else add

    def plan(self, fn: Callable[[P], Sequence[Step[Any]]]) -> Callable[[P], Sequence[Step[Any]]]:
        """Decorator: the steps a job runs depend on its params; `fn(params)` returns them (`Step`s)."""
        self._planner = fn
        return fn

    def cleanup(self, fn: Cleanup) -> Cleanup:
        """Decorator: `fn(job, reason)` runs on a worker after discard, auto-discard and restart (`reason`
        says which), once the stopped attempt has unwound. A failing cleanup is logged, never retried."""
        self._cleanup = fn
        return fn

    # -- reading ----------------------------------------------------------------------------------------

    @property
    def cleanup_hook(self) -> Cleanup | None:
        return self._cleanup

    def step_list(self) -> list[StepSpec] | None:
        """The declared steps (name, weight), or None when the steps are planned from the params."""
        if self._planner is not None:
            return None
        return [StepSpec(s.name, s.weight) for s in self._steps]

    def parse(self, raw: dict[str, Any] | None) -> P:
        """Validated parameters; `Invalid` with pydantic's explanation otherwise."""
        try:
            return self.params.model_validate(raw or {})
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors())
            raise Invalid(f"invalid params for job type {self.name!r}: {details}") from None

    def steps_for(self, params: P) -> list[Step[Any]]:
        """The steps a job with these (validated) params runs."""
        return list(self._planner(params)) if self._planner is not None else list(self._steps)

    def prepare(self, raw: dict[str, Any] | None) -> tuple[dict[str, Any], list[StepSpec]]:
        """The validated params (as stored) and the step list a job with them will have; `Invalid` if that list
        is empty (a job runs at least one step)."""
        params = self.parse(raw)
        specs = [StepSpec(s.name, s.weight) for s in self.steps_for(params)]
        if not specs:
            raise Invalid(f"job type {self.name!r} planned no steps for these params")
        return params.model_dump(mode="json"), specs

    def step_at(self, params: P, index: int, name: str) -> Step[Any]:
        """Step `index` of a job with these params, which was planned as `name` when the job was submitted;
        `StepsChanged` (a `ValueError`) if the job type's steps have changed since (a job never runs another
        step's code)."""
        steps = self.steps_for(params)
        if index >= len(steps) or steps[index].name != name:
            now = repr(steps[index].name) if index < len(steps) else "missing"
            raise StepsChanged(
                f"job type {self.name!r} changed since the job was submitted: its step {index} was {name!r} and is"
                f" now {now}; restart the job to run the new steps"
            )
        return steps[index]


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, JobType[Any]] = {}

    def register(self, job_type: JobType[Any]) -> JobType[Any]:
        """Add a job type. A type of the same name declared in another module is refused (`ValueError`): a
        plugin must not replace a built-in or another plugin's type; the same module imported again replaces it."""
        known = self._types.get(job_type.name)
        if known is not None and known.module != job_type.module:
            raise ValueError(
                f"job type {job_type.name!r} is declared twice: in {known.module} and in {job_type.module}"
            )
        self._types[job_type.name] = job_type
        return job_type

    def get(self, name: str) -> JobType[Any]:
        """The job type called `name`; `Invalid` if none is registered."""
        try:
            return self._types[name]
        except KeyError:
            raise Invalid(f"unknown job type {name!r}; known: {', '.join(sorted(self._types))}") from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def types(self) -> list[JobType[Any]]:
        """Every registered job type, by name."""
        return [self._types[n] for n in sorted(self._types)]

    def check_target(self, job_type: JobTypeInfo, target: tuple[str, str] | None) -> None:
        """`Invalid` unless the target fits what the job type declares."""
        if target is None:
            if job_type.target_required:
                raise Invalid(f"job type {job_type.name!r} needs a {job_type.target_kind} target")
            return
        if not job_type.target_allowed:
            raise Invalid(f"job type {job_type.name!r} takes no target")
        if job_type.target_kind is not None and target[0] != job_type.target_kind:
            raise Invalid(f"job type {job_type.name!r} works on {job_type.target_kind} targets, not {target[0]!r}")


registry = Registry()


class PluginError(Exception):
    """A module named in JOBCTL_PLUGINS could not be imported; `str()` is one line naming it and why."""


def load_plugins(modules: str) -> None:
    """Import each module named in `modules` (comma-separated), which register their own job types on import.
    A module that cannot be imported raises `PluginError`: a misspelt plugin must not pass."""
    for name in filter(None, (m.strip() for m in modules.split(","))):
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise PluginError(f"cannot import plugin {name!r} (JOBCTL_PLUGINS): {type(exc).__name__}: {exc}") from exc
