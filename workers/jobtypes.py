"""The built-in job types (SPEC §1): `sleep`, for demos and tests, and `file_digest`."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from jobctl.scheduler.targets import FileResolver
from jobctl.workers.context import StepContext
from jobctl.workers.registry import JobType, Params, StepDef, registry

REPORT_EVERY_S = 0.05  # SPEC: a sleep step reports progress at least 10 times a second


class SleepParams(Params):
    steps: int = Field(3, ge=1, le=50)
    seconds: float = Field(1.0, ge=0, le=3600)
    fail_at: int | None = Field(None, ge=0, description="index of the step that raises")
    fail_times: int | None = Field(None, ge=0, description="how many attempts of that step fail (default: all)")
    subprocess: bool = Field(False, description="each step waits in a child process (`sleep`)")

    @model_validator(mode="after")
    def _fail_at_is_a_step(self) -> SleepParams:
        if self.fail_at is not None and self.fail_at >= self.steps:
            raise ValueError(f"fail_at must be a step index below steps ({self.steps})")
        return self


def _sleep_step(ctx: StepContext) -> dict[str, Any] | None:
    """Sleep `seconds`, reporting progress, resuming from the checkpointed elapsed time."""
    p = SleepParams.model_validate(ctx.params)
    total = p.seconds
    elapsed = float(ctx.checkpoint.get("elapsed", 0.0))
    fails = p.fail_at == ctx.step_index and (p.fail_times is None or ctx.attempt <= p.fail_times)
    ctx.log(f"sleeping {total - elapsed:.2f}s (attempt {ctx.attempt}{', in a child process' if p.subprocess else ''})")
    child = ctx.spawn(["sleep", f"{total - elapsed:.3f}"]) if p.subprocess else None
    started = time.monotonic() - elapsed
    saved = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if fails and elapsed >= total / 2:
            raise RuntimeError(f"step {ctx.step_index} failed on purpose (attempt {ctx.attempt})")
        if (child is None and elapsed >= total) or (child is not None and child.poll() is not None):
            break
        ctx.progress(100.0 * elapsed / total if total else 100.0)
        if time.monotonic() - saved >= 0.5:
            ctx.checkpoint["elapsed"] = elapsed
            ctx.save_checkpoint()
            saved = time.monotonic()
        time.sleep(min(REPORT_EVERY_S, max(0.0, total - elapsed)) or REPORT_EVERY_S / 5)
    ctx.progress(100.0)
    ctx.log("done")
    return {"slept": total}


def _sleep_steps(params: Params) -> Sequence[StepDef]:
    assert isinstance(params, SleepParams)
    return [StepDef(f"sleep-{i + 1}", _sleep_step) for i in range(params.steps)]


class NoParams(Params):
    pass


CHUNK = 1 << 20


def _file_path(ctx: StepContext) -> str:
    from jobctl.workers.runtime import services

    assert ctx.target is not None
    resolver = services().targets.get("file")
    assert isinstance(resolver, FileResolver)
    return str(resolver.path(ctx.target[1]))


def _stat(ctx: StepContext) -> dict[str, Any]:
    st = os.stat(_file_path(ctx))
    ctx.log(f"{st.st_size} bytes")
    return {"bytes": st.st_size}


def _digest(ctx: StepContext) -> dict[str, Any]:
    path = _file_path(ctx)
    size = max(1, int(ctx.outputs.get("stat", {}).get("bytes", 0)))
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            ctx.progress(min(100.0, 100.0 * done / size))
    ctx.log(f"sha256 {digest.hexdigest()} over {done} bytes")
    return {"sha256": digest.hexdigest(), "bytes": done}


def _record(ctx: StepContext) -> dict[str, Any]:
    digest = ctx.outputs["digest"]
    return {"sha256": digest["sha256"], "bytes": digest["bytes"]}


registry.register(JobType(name="sleep", params=SleepParams, steps=_sleep_steps))
registry.register(
    JobType(
        name="file_digest",
        params=NoParams,
        steps=lambda _: [StepDef("stat", _stat, 1.0), StepDef("digest", _digest, 8.0), StepDef("record", _record, 1.0)],
        target_kind="file",
        target_required=True,
    )
)
