"""What a step's code sees: `StepContext` (`jobctl.Context`) - its validated params, its target, earlier steps'
outputs, progress, log, info, checkpoint, `iterate`, resources, stop, subprocesses; and `StepFailed`, a failure
with a code and a hint. docs/authoring.md is the reference.

Everything here is cheap to call from a hot loop: `progress()`, `log()` and `info()` only store values; a flusher
thread (`workers.runtime`) writes them to the database and Redis a few times a second, fenced by the
attempt's token. `progress` is a C call (a one-slot deque's `append`) until the attempt is stopped, when it
becomes a function that raises `StepStopped`: a loop reporting progress stops at its next call.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import redis
from pydantic import BaseModel

from jobctl.scheduler import keys
from jobctl.scheduler.failures import check_code

P = TypeVar("P")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class EarlierStep(Protocol[T_co]):
    """What `StepContext.output` needs of a step (a `registry.Step` is one): its name, the model its output is
    read back as, and - through its call's return type - the type `output` returns."""

    @property
    def name(self) -> str: ...

    @property
    def output_model(self) -> type[BaseModel] | None: ...

    def __call__(self, ctx: Any) -> T_co: ...


class StepStopped(BaseException):
    """Raised inside a step's code when its attempt was paused, discarded, restarted, timed out or lost."""


class StepFailed(Exception):
    """Raise it in a step to fail the attempt with a message for people, a `code` (a short machine-readable word;
    `step_failed` when none is given) and a `hint` (what to do about it): the step's `error` shows all three. The
    job type's `Retry` decides whether the step runs again. Any other exception fails the attempt too (code
    `exception`). A code that is not 1-64 letters, digits, `_ . : -`, or is one of jobctl's own
    (`scheduler.failures.CODES`), is a `ValueError` here, where the step raises it."""

    def __init__(self, message: str, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = None if code is None else check_code(code)
        self.hint = hint

    def describe(self) -> str:
        """The error as the job shows it: `[code] message (hint: ...)`."""
        text = f"[{self.code}] {self.message}" if self.code else self.message
        return f"{text} (hint: {self.hint})" if self.hint else text


class Target:
    """The object a job works on: `kind`, `name`, the `version` the job was submitted against, and its
    `attributes` (a `record` target's stored attributes; a `file` target's `path`), read when first used."""

    def __init__(self, kind: str, name: str, version: str | None, attributes: Callable[[], Mapping[str, Any]]) -> None:
        self.kind = kind
        self.name = name
        self.version = version
        self._load = attributes
        self._attributes: Mapping[str, Any] | None = None

    @property
    def attributes(self) -> Mapping[str, Any]:
        if self._attributes is None:
            self._attributes = dict(self._load())
        return self._attributes

    def __repr__(self) -> str:
        return f"Target({self.kind!r}, {self.name!r}, version={self.version!r})"


@dataclass(frozen=True)
class JobInfo(Generic[P]):
    """A job as its job type's cleanup sees it."""

    id: str
    project: str
    type: str
    params: P
    target: Target | None
    status: str


class StepContext(Generic[P]):
    """The running attempt of one step, as its code sees it (`jobctl.Context[YourParams]`)."""

    def __init__(
        self,
        *,
        job_id: str,
        step_index: int,
        step_name: str,
        step_count: int,
        attempt: int,
        fence: str,
        params: P,
        target: Target | None,
        checkpoint: dict[str, Any],
        outputs: dict[str, Any],
        redis_client: redis.Redis,
        save_checkpoint: Any,
        project: str = "",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.job_id = job_id
        self.project = project
        self.step_index = step_index
        self.step_name = step_name
        self.step_count = step_count
        self.attempt = attempt
        self.fence = fence
        #: The job's params, validated: an instance of the job type's `Params` model.
        self.params: P = params
        #: The job's target (`Target`), or None.
        self.target = target
        #: Survives resume once saved with `save_checkpoint()`; cleared by restart.
        self.checkpoint: dict[str, Any] = checkpoint
        #: What the finished steps before this one returned, by step name.
        self.outputs = outputs
        #: Resources entered here are released on every exit path: success, error and stop.
        self.resources = ExitStack()
        self._redis = redis_client
        self._save_checkpoint = save_checkpoint
        self._reported: deque[float] = deque((0.0,), maxlen=1)
        #: `progress(percent)`: report the step's progress (0-100). Meant for hot loops (it only stores the
        #: value); raises `StepStopped` once the attempt is stopped. Look it up on the context at each call:
        #: a stop replaces it (a copy kept in a variable still stores, and the stop signal still interrupts).
        self.progress: Callable[[float], None] = self._reported.append
        self._lines: list[str] = []
        self._info: dict[str, Any] = dict(info or {})  # what the step reported with `info`, earlier attempts' too
        self._info_changed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._groups: set[int] = set()

    # -- earlier steps ----------------------------------------------------------------------------------

    def output(self, step: EarlierStep[T] | str) -> T:
        """What an earlier step of this job returned: as the step's declared model when its code's return
        annotation names a pydantic model, else as stored (a dict, or None). `KeyError` if that step has not
        finished (or is not an earlier step)."""
        name = step if isinstance(step, str) else step.name
        if name not in self.outputs:
            raise KeyError(f"step {name!r} has no output: it is not a finished earlier step of this job")
        raw = self.outputs[name]
        model = None if isinstance(step, str) else step.output_model
        return model.model_validate(raw) if model is not None and raw is not None else raw  # type: ignore[return-value]

    # -- reporting --------------------------------------------------------------------------------------

    def iterate(
        self, items: Iterable[T], *, checkpoint_every: int | None = None, total: int | None = None, key: str = "iterate"
    ) -> Iterator[T]:
        """Yield `items`, reporting progress (position / `total`, or `len(items)`) and stopping promptly on a
        stop. With `checkpoint_every=n`, the position is saved every n items (`checkpoint[key]`), and an attempt
        after a pause, an error or a lost worker skips the items saved as done: it continues at the first item
        not checkpointed. An item counts as done once the loop body returned to ask for the next one."""
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError("checkpoint_every is at least 1")
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        done = int(self.checkpoint.get(key, 0))
        if done:
            self.log(f"resuming at item {done}{f' of {total}' if total else ''} (checkpoint)")
        iterator = iter(items)
        for _ in range(done):  # what an earlier attempt finished
            if next(iterator, _END) is _END:
                break
        since_saved = 0
        for item in iterator:
            self.check_stop()
            if total:
                self.progress(min(100.0, 100.0 * done / total))
            yield item
            done += 1
            since_saved += 1
            if checkpoint_every is not None and since_saved >= checkpoint_every:
                self.checkpoint[key] = done
                self.save_checkpoint()
                since_saved = 0
        self.check_stop()
        if checkpoint_every is not None and since_saved:
            self.checkpoint[key] = done
            self.save_checkpoint()
        self.progress(100.0)

    def log(self, line: str) -> None:
        """Append a line to the step's log (stored with the step, shown by the API)."""
        with self._lock:
            self._lines.append(f"{time.strftime('%H:%M:%S')} {line}")

    def info(self, **details: str | int | float | bool | None) -> None:
        """Report small details of the step as keys and values - rows done, an external system's id or URL:
        `ctx.info(rows=1200, app_id="application_1714")`. They are merged over the keys reported before (by this
        attempt or an earlier one of the step), written with the progress at the next flush, and shown with the
        step (its `info`). Cheap to call: it only stores them.

        At most `MAX_INFO_KEYS` keys, each of 1 to `MAX_INFO_KEY` characters; each value a JSON scalar - a
        string of at most `MAX_INFO_TEXT` characters, a finite number, a boolean or None. Anything else raises
        `ValueError` (`TypeError` for a value that is no scalar) and stores nothing of this call."""
        checked = {key: _info_value(key, value) for key, value in details.items()}
        with self._lock:
            merged = {**self._info, **checked}
            if len(merged) > MAX_INFO_KEYS:
                raise ValueError(
                    f"a step's info holds at most {MAX_INFO_KEYS} keys; this call would make it {len(merged)}"
                )
            self._info = merged
            self._info_changed = self._info_changed or bool(checked)

    def save_checkpoint(self) -> None:
        """Store `checkpoint` now, so that a resumed attempt starts from it. No-op once stopped."""
        self._save_checkpoint(dict(self.checkpoint))

    # -- stopping -----------------------------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def check_stop(self) -> None:
        """Raise `StepStopped` if the attempt was stopped (for loops that report no progress)."""
        if self._stop.is_set():
            raise StepStopped()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking up (with `StepStopped`) as soon as the attempt is stopped."""
        if self._stop.wait(seconds):
            raise StepStopped()

    # -- subprocesses --------------------------------------------------------------------------------------

    def spawn(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a command in its own process group, killed (whole group) when the attempt ends or stops.

        The group is registered with the worker (Redis), so a stop kills it even if this process is killed
        first.
        """
        proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **kwargs)
        self._register_group(proc.pid)
        return proc

    def run(self, args: Sequence[str], *, poll: float = 0.05, **kwargs: Any) -> int:
        """Run a command (see `spawn`) and wait for it, staying stoppable; return its exit code."""
        proc = self.spawn(args, **kwargs)
        try:
            while True:
                try:
                    return proc.wait(timeout=poll)
                except subprocess.TimeoutExpired:
                    self.check_stop()
        finally:
            if proc.poll() is None:
                _kill_group(proc.pid)
                proc.wait()
            self._forget_group(proc.pid)

    def _register_group(self, pgid: int) -> None:
        with self._lock:
            self._groups.add(pgid)
        key = keys.pgids(self.fence)
        pipe = self._redis.pipeline()
        pipe.sadd(key, pgid)
        pipe.expire(key, 24 * 3600)
        pipe.execute()

    def _forget_group(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)
        self._redis.srem(keys.pgids(self.fence), pgid)

    def kill_children(self) -> None:
        """Kill every process group this attempt started that is still alive."""
        with self._lock:
            groups, self._groups = set(self._groups), set()
        for pgid in groups:
            _kill_group(pgid)
        if groups:
            self._redis.delete(keys.pgids(self.fence))

    # -- for the runtime ----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self.progress = _stopped

    def take_reports(self) -> tuple[float, list[str]]:
        with self._lock:
            lines, self._lines = self._lines, []
        return self._reported[-1], lines

    def take_info(self) -> dict[str, Any] | None:
        """The whole info, if `info` changed it since the last call; else None."""
        with self._lock:
            if not self._info_changed:
                return None
            self._info_changed = False
            return dict(self._info)

    def give_back_info(self) -> None:
        """The info taken last was not written (the write failed): take it again at the next flush."""
        with self._lock:
            self._info_changed = True


_END = object()

#: The bounds of a step's info (`StepContext.info`): keys, a key's length, a string value's length.
MAX_INFO_KEYS = 50
MAX_INFO_KEY = 64
MAX_INFO_TEXT = 1000


def _info_value(key: str, value: Any) -> str | int | float | bool | None:
    """`value` if a step's info may hold it under `key`; `ValueError` or `TypeError` saying why not."""
    if not 1 <= len(key) <= MAX_INFO_KEY:
        raise ValueError(f"an info key has 1 to {MAX_INFO_KEY} characters, not {len(key)} ({key[:80]!r})")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"info {key!r} is {value}: JSON cannot hold it")
        return value
    if isinstance(value, str):
        if len(value) > MAX_INFO_TEXT:
            raise ValueError(f"info {key!r} has {len(value)} characters; at most {MAX_INFO_TEXT}")
        return value
    raise TypeError(
        f"info {key!r} is a {type(value).__name__}; give a string, a number, a boolean or None (str() it first)"
    )


def _stopped(percent: float) -> None:
    """`StepContext.progress` once the attempt is stopped."""
    raise StepStopped()


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
