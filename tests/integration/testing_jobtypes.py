"""Job types for the tests, loaded into workers with JOBCTL_PLUGINS=tests.integration.testing_jobtypes.

None of them ever calls back (no progress, no stop checks): they prove that a stop does not depend on the
step's cooperation.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from jobctl.workers.context import JobInfo, StepContext, StepFailed
from jobctl.workers.registry import JobType, Params, Retry


class HoldParams(Params):
    marker: str  # a file that exists exactly while the step holds its resource
    seconds: float = Field(60, ge=0)


def _hold(ctx: StepContext) -> dict[str, Any] | None:
    """Acquire a resource (the marker file), then block in time.sleep without ever calling back."""
    marker = Path(ctx.params.marker)
    marker.write_text(str(ctx.attempt))
    ctx.resources.callback(marker.unlink, missing_ok=True)
    time.sleep(ctx.params.seconds)
    return None


class SpinParams(Params):
    pass


def _spin(ctx: StepContext) -> dict[str, Any] | None:
    """Busy in one C call that holds the GIL for minutes: Python signal handlers cannot run inside it."""
    sum(range(10**12))
    return None


JobType("hold", params=HoldParams, target="any").step(_hold, name="hold")
JobType("spin", params=SpinParams, target="any").step(_spin, name="spin")


class ChildParams(Params):
    marker: str  # the child's pid is written here once it runs
    how: Literal["spawn", "popen", "popen-spin"] = "spawn"


def _child(ctx: StepContext) -> dict[str, Any] | None:
    """Start `sleep 600` and wait for it: through `ctx.spawn`, through plain `subprocess.Popen` (the runtime
    does not know the child), or through Popen and then a C call that never returns to Python."""
    how = ctx.params.how
    child = ctx.spawn(["sleep", "600"]) if how == "spawn" else subprocess.Popen(["sleep", "600"])
    Path(ctx.params.marker).write_text(str(child.pid))
    if how == "popen-spin":
        sum(range(10**12))
    child.wait()
    return None


JobType("child", params=ChildParams, target="any").step(_child, name="child")


class NapParams(Params):
    marker: str  # exists exactly while the step holds its resource
    seconds: float = Field(60, ge=0)


nap = JobType("nap", params=NapParams, target="any", retry=Retry(attempts=2))


@nap.step(timeout_s=1.0)
def _nap(ctx: StepContext[NapParams]) -> None:
    """Hold a resource and sleep past the step's one-second timeout without ever calling back."""
    marker = Path(ctx.params.marker)
    marker.write_text(str(ctx.attempt))
    ctx.resources.callback(marker.unlink, missing_ok=True)
    time.sleep(ctx.params.seconds)


class TidyParams(Params):
    marker: str  # the cleanup writes the time it finished here, with its reason
    cleanup_s: float = Field(1.0, ge=0)


tidy = JobType("tidy", params=TidyParams, target="any")


@tidy.step
def _tidy_wait(ctx: StepContext[TidyParams]) -> None:
    ctx.sleep(600)


@tidy.cleanup
def _tidy_cleanup(job: JobInfo[TidyParams], reason: str) -> None:
    """A slow cleanup that records when it ended and why."""
    time.sleep(job.params.cleanup_s)
    Path(job.params.marker).write_text(f"{time.time()} {reason}")


class EchoParams(Params):
    text: str = Field(max_length=2000)


echo = JobType("echo", params=EchoParams, target="any", retry=Retry(attempts=1))


@echo.step
def _echo(ctx: StepContext[EchoParams]) -> None:
    """Put `text` everywhere a step can: its log, its error and the error's hint (the monitor's hostile-input test)."""
    ctx.log(ctx.params.text)
    raise StepFailed(ctx.params.text, code="echo", hint=ctx.params.text)


class DiagnoseParams(Params):
    how: Literal["finish", "step_failed", "exception", "invalid_output", "too_much_info", "wait"] = "finish"
    seconds: float = Field(0, ge=0)  # `wait`: how long the step waits (stoppable) after reporting its info
    note: str = Field("", max_length=1000)  # reported as info `note` when given (the monitor's hostile-input test)


diagnose = JobType("diagnose", params=DiagnoseParams, target="any", retry=Retry(attempts=1))


@diagnose.step
def _report(ctx: StepContext[DiagnoseParams]) -> dict[str, Any] | None:
    """Report info (merged over two calls, a link and a string that must never be one), then end as `how` says:
    fail with a code and a hint, raise, return what cannot be stored, overflow the info's bounds, or wait."""
    ctx.info(rows=1200, app_id="application_1714", done=False)
    ctx.info(done=True, app_url="https://spark.example.com/app/1714", script="javascript:alert(1)", ratio=0.5)
    if ctx.params.note:
        ctx.info(note=ctx.params.note)
    how = ctx.params.how
    if how == "step_failed":
        raise StepFailed("the export table is locked", code="table-locked", hint="wait for the nightly load to end")
    if how == "exception":
        raise KeyError("columns")
    if how == "invalid_output":
        return {"when": {1, 2}}  # a set: JSON cannot hold it
    if how == "too_much_info":
        ctx.info(**{f"k{i}": i for i in range(60)})
    if how == "wait":
        ctx.sleep(ctx.params.seconds)
    return {"rows": 1200}


diagnose_alone = JobType(
    "diagnose_alone", params=DiagnoseParams, target="record", exclusive="target", retry=Retry(attempts=1)
)
diagnose_alone.step(_report, name="report")


class PipelineParams(Params):
    rows: int = Field(48_213, ge=0)


pipeline = JobType("pipeline", params=PipelineParams, retry=Retry(attempts=1))


@pipeline.step
def extract(ctx: StepContext[PipelineParams]) -> dict[str, Any]:
    """Report where the rows came from, then finish."""
    ctx.info(
        rows=ctx.params.rows, source="s3://exports/orders/2026-05-01/", app_url="https://spark.example.com/app/1714"
    )
    ctx.progress(100.0)
    return {"rows": ctx.params.rows}


@pipeline.step(weight=3)
def load(ctx: StepContext[PipelineParams]) -> None:
    """Report the load's progress, then fail as a locked warehouse table makes it."""
    ctx.info(batches_loaded=12, batches=40, warehouse_job="wh-7f3a9c")
    ctx.progress(30.0)
    raise StepFailed(
        "the warehouse refused the load: table analytics.orders is locked by another session",
        code="table-locked",
        hint="wait for the nightly vacuum of analytics.orders to finish, then resume the job",
    )


@pipeline.step
def publish(ctx: StepContext[PipelineParams]) -> None:
    ctx.log("published")
