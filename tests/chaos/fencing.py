"""What self-fencing left behind, read after a fault: the worker's own account of each attempt it stopped (its
log, JSON lines: `JOBCTL_LOG_FORMAT=json`) and the scheduler's takeovers (the `retry` events of lost workers).

A self-fence is measured on the worker's side: `stopped_after_s` is the time from its last renewal of the lease
to the attempt's code gone (unwound, or its process killed), on the worker's monotonic clock. The takeover is the
scheduler's `retry` event. Both times are wall-clock readings of one machine here, so they compare directly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jobctl.scheduler.store import models

_UNWOUND = re.compile(
    r"self-fenced \(fence (?P<fence>\S+)\): lease not renewed for (?P<after>[\d.]+) s"
    r".*unwound after (?P<gone>[\d.]+) s"
)
_KILLED = re.compile(
    r"self-fence: step attempt (?P<fence>\S+) did not unwind.*\(lease not renewed for (?P<gone>[\d.]+) s\)"
)
_BEFORE = re.compile(r"self-fenced \(fence (?P<fence>\S+)\) before its code started: leased (?P<after>[\d.]+) s ago")
_LOST = re.compile(r"lost during step (?P<step>\d+) \(attempt (?P<attempt>\d+)\)")


@dataclass(frozen=True)
class SelfFence:
    """One attempt a worker stopped because it could not renew its lease."""

    fence: str
    at: datetime  # when the worker logged its code gone
    stopped_after_s: float  # from the last successful renewal to the code gone, on the worker's clock
    killed: bool  # its code did not unwind within the grace: its process was killed
    job_id: str | None = None
    step: int | None = None
    attempt: int | None = None
    before_start: bool = False  # the answer that leased it came after the deadline: its code never ran


def self_fences(log: Path) -> list[SelfFence]:
    """The self-fences a worker's log (JSON lines) records, in order."""
    found: list[SelfFence] = []
    if not log.exists():
        return found
    for line in log.read_text(errors="replace").splitlines():
        if "self-fence" not in line or not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message, at = record.get("message", ""), datetime.fromisoformat(record["ts"])
        if match := _UNWOUND.search(message):
            found.append(
                SelfFence(
                    match["fence"],
                    at,
                    float(match["gone"]),
                    False,
                    record.get("job_id"),
                    record.get("step"),
                    record.get("attempt"),
                )
            )
        elif match := _BEFORE.search(message):
            found.append(
                SelfFence(
                    match["fence"],
                    at,
                    float(match["after"]),
                    False,
                    record.get("job_id"),
                    record.get("step"),
                    record.get("attempt"),
                    before_start=True,
                )
            )
        elif match := _KILLED.search(message):
            found.append(SelfFence(match["fence"], at, float(match["gone"]), True))
    return found


@dataclass(frozen=True)
class Takeover:
    """The scheduler found an attempt's lease run out and sent its step again (a `retry` of a lost worker)."""

    job_id: str
    step: int
    attempt: int  # the lost attempt's number
    worker: str  # the worker the scheduler names as lost
    at: datetime


def takeovers(engine: sa.Engine) -> list[Takeover]:
    """Every lost-worker retry the scheduler recorded."""
    with Session(engine) as s:
        rows = s.execute(
            sa.select(models.Event.job_id, models.Event.reason, models.Event.at).where(
                models.Event.action == "retry", models.Event.reason.like("%lost during step%")
            )
        ).all()
    found = []
    for job_id, reason, at in rows:
        match = _LOST.search(reason or "")
        if match is None:
            continue
        worker = (reason or "").split("worker ", 1)[1].split(" lost", 1)[0]
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        found.append(Takeover(job_id, int(match["step"]), int(match["attempt"]), worker, at))
    return found


def attempts_of(engine: sa.Engine, fences: list[str]) -> dict[str, tuple[str, int, int]]:
    """(job, step, attempt) of these fences, from the `record` job type's side table (`tests.chaos.ledger`)."""
    if not fences:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT DISTINCT fence, job_id, step_index, attempt FROM chaos_executions WHERE fence IN :f"
            ).bindparams(sa.bindparam("f", expanding=True)),
            {"f": fences},
        ).all()
    return {fence: (job_id, int(step), int(attempt)) for fence, job_id, step, attempt in rows}


@dataclass(frozen=True)
class Margin:
    """For a self-fenced attempt the scheduler took over: how long before the takeover its code was gone."""

    fence: str
    stopped_after_s: float
    margin_s: float  # takeover time minus the time its code was gone (must be > 0)


def ran(fences: list[SelfFence]) -> list[SelfFence]:
    """The self-fences of attempts whose code ran (not those stopped before their code started)."""
    return [f for f in fences if not f.before_start]


def margins(engine: sa.Engine, fences: list[SelfFence]) -> tuple[list[Margin], list[SelfFence]]:
    """Pair each self-fence of an attempt whose code ran with the takeover of the same attempt; (pairs, those
    not taken over)."""
    fences = ran(fences)
    known = attempts_of(engine, [f.fence for f in fences if f.job_id is None])
    taken = {(t.job_id, t.step, t.attempt): t for t in takeovers(engine)}
    paired, alone = [], []
    for fence in fences:
        key = (
            (fence.job_id, fence.step, fence.attempt)
            if fence.job_id is not None and fence.step is not None and fence.attempt is not None
            else known.get(fence.fence)
        )
        takeover = taken.get(key) if key is not None else None
        if takeover is None:
            alone.append(fence)
        else:
            paired.append(Margin(fence.fence, fence.stopped_after_s, (takeover.at - fence.at).total_seconds()))
    return paired, alone


def stops(log: Path) -> list[tuple[str, int, datetime, bool]]:
    """(job, step, when, self-fenced) of every attempt a worker's log (JSON lines) says was stopped: its code
    unwound, or raised another error as it was stopped (a driver's call it was in turned the stop into one)."""
    found: list[tuple[str, int, datetime, bool]] = []
    if not log.exists():
        return found
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{") or ("stopped" not in line and "self-fenced" not in line):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message, job_id, step = record.get("message", ""), record.get("job_id"), record.get("step")
        if job_id is None or step is None or not message.startswith(f"step {step} of job {job_id} "):
            continue
        rest = message.removeprefix(f"step {step} of job {job_id} ")
        if rest == "stopped" or rest.startswith(("self-fenced", "raised")):
            found.append((job_id, int(step), datetime.fromisoformat(record["ts"]), rest.startswith("self-fenced")))
    return found


_KILL = re.compile(r"step (?:attempt )?(?P<fence>[0-9a-f]{32}) (?:ignored the stop|did not unwind)")


def kills(log: Path) -> list[tuple[str, datetime]]:
    """(fence, when) of every attempt a worker's main process killed because it did not unwind from a stop or a
    self-fence within the grace (`workers.control`, `workers.selffence`)."""
    found: list[tuple[str, datetime]] = []
    if not log.exists():
        return found
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{") or "killing pool process" not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if match := _KILL.search(record.get("message", "")):
            found.append((match["fence"], datetime.fromisoformat(record["ts"])))
    return found


def ended(engine: sa.Engine, fences: list[str]) -> set[str]:
    """Those of these attempts whose code ran to its end (the `record` job type's `end` row)."""
    if not fences:
        return set()
    with engine.connect() as conn:
        query = sa.text("SELECT fence FROM chaos_executions WHERE phase = 'end' AND fence IN :f").bindparams(
            sa.bindparam("f", expanding=True)
        )
        return {row[0] for row in conn.execute(query, {"f": fences})}


def unfenced_takeovers(engine: sa.Engine, fences: list[SelfFence], workers: set[str]) -> list[Takeover]:
    """Takeovers of attempts on `workers` whose code had started and not finished (the `record` job type's side
    table) and that no self-fence stopped: two attempts of one step could then have run at once. Must be none."""
    stopped = ran(fences)
    keys = {(f.job_id, f.step, f.attempt) for f in stopped if f.job_id is not None}
    by_fence = {f.fence for f in stopped}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT job_id, step_index, attempt, fence, max(CASE WHEN phase = 'end' THEN 1 ELSE 0 END)"
                " FROM chaos_executions GROUP BY job_id, step_index, attempt, fence"
            )
        ).all()
    code = {(job_id, int(step), int(attempt)): (fence, bool(done)) for job_id, step, attempt, fence, done in rows}
    found = []
    for takeover in takeovers(engine):
        key = (takeover.job_id, takeover.step, takeover.attempt)
        if takeover.worker not in workers or key in keys:
            continue
        ran_code = code.get(key)
        if ran_code is None or ran_code[1] or ran_code[0] in by_fence:  # never started, ran to its end, or killed
            continue
        found.append(takeover)
    return found
