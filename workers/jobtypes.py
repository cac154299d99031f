"""The built-in job types, written with the public authoring API (`import jobctl`) as examples.

- `sleep`, for demos and tests: `steps` steps (planned from the params) that each wait `seconds`, reporting
  progress at least 10 times a second and resuming from a checkpoint; `fail_at`/`fail_times` make a step fail,
  `subprocess` makes each step wait in a child process (which a pause or discard must kill).
- `file_digest`: a `file` target's SHA-256, in three steps: `stat`, `digest` (progress by bytes), `record`.
"""

from __future__ import annotations

import hashlib
import os
import time

from pydantic import BaseModel, Field, model_validator

import jobctl

REPORT_EVERY_S = 0.05  # a sleep step reports progress at least 10 times a second
SAVE_EVERY_S = 0.5  # and saves how long it has slept this often


class SleepParams(jobctl.Params):
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


sleep = jobctl.JobType("sleep", params=SleepParams, target="any")  # an optional target of any kind


def _sleep_step(ctx: jobctl.Context[SleepParams]) -> dict[str, float]:
    """Sleep `seconds`, reporting progress, resuming from the checkpointed elapsed time."""
    p = ctx.params
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
        if time.monotonic() - saved >= SAVE_EVERY_S:
            ctx.checkpoint["elapsed"] = elapsed
            ctx.save_checkpoint()
            saved = time.monotonic()
        time.sleep(min(REPORT_EVERY_S, max(0.0, total - elapsed)) or REPORT_EVERY_S / 5)
    ctx.progress(100.0)
    ctx.log("done")
    return {"slept": total}


@sleep.plan
def _sleep_plan(params: SleepParams) -> list[jobctl.Step[dict[str, float]]]:
    return [jobctl.Step(f"sleep-{i + 1}", _sleep_step) for i in range(params.steps)]


class Digest(BaseModel):
    sha256: str
    bytes: int


class Size(BaseModel):
    bytes: int


file_digest = jobctl.JobType("file_digest", params=jobctl.Params, target="file")
CHUNK = 1 << 20


@file_digest.step
def stat(ctx: jobctl.Context[jobctl.Params]) -> Size:
    size = os.stat(_path(ctx)).st_size
    ctx.log(f"{size} bytes")
    return Size(bytes=size)


@file_digest.step(weight=8.0)
def digest(ctx: jobctl.Context[jobctl.Params]) -> Digest:
    size = max(1, ctx.output(stat).bytes)
    sha = hashlib.sha256()
    done = 0
    with open(_path(ctx), "rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            done += len(chunk)
            ctx.progress(min(100.0, 100.0 * done / size))
    ctx.log(f"sha256 {sha.hexdigest()} over {done} bytes")
    return Digest(sha256=sha.hexdigest(), bytes=done)


@file_digest.step
def record(ctx: jobctl.Context[jobctl.Params]) -> Digest:
    return ctx.output(digest)  # the last step's output is the job's result: {sha256, bytes}


def _path(ctx: jobctl.Context[jobctl.Params]) -> str:
    assert ctx.target is not None  # the job type requires one
    return str(ctx.target.attributes["path"])
