"""Stop latency and auto-discard latency, next to raw Celery's `revoke(terminate=True)` from the same run.

jobctl stop: from the pause request to the step's code stopped with its resource released (the step's
`bench_hold` resource writes its release time) AND the job PAUSED durably (the pause commits before the
request returns) - whichever comes last. Auto-discard: from `DELETE .../targets/record/<name>` sent to the API
to the job DISCARDED (committed before the answer) and its step's resource released. Raw: from
`revoke(terminate=True)` to the task's pool process gone (its code cannot run any more).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from jobctl.bench.jobtypes import released_key, started_key
from jobctl.bench.procs import wait_for
from jobctl.bench.sides import ADMIN_TOKEN, JobctlSide, RawSide
from jobctl.bench.stats import percentile
from jobctl.states import Action


@dataclass(frozen=True)
class Latencies:
    name: str
    seconds: list[float]

    def p(self, q: float) -> float:
        return percentile(self.seconds, q)


def _wait_started(side: JobctlSide, job_id: str) -> None:
    wait_for(lambda: side.svc.redis.exists(started_key(job_id)), 30, f"job {job_id}'s step to start", 0.002)


def _released_at(side: JobctlSide, job_id: str, timeout: float = 10) -> float:
    value = wait_for(lambda: side.svc.redis.get(released_key(job_id)), timeout, "the step's resource release", 0.0005)
    return float(value)  # type: ignore[arg-type]


def jobctl_stop(side: JobctlSide, trials: int) -> Latencies:
    """Pause a running `bench_hold` step `trials` times; each trial's stop latency in seconds."""
    project = side.project()
    out = []
    for _ in range(trials):
        job_id = side.submit(project, "bench_hold")
        _wait_started(side, job_id)
        time.sleep(0.02)  # well inside the step's wait loop
        began = time.time()
        side.svc.ops.operate(job_id, Action.PAUSE, "bench")
        durable = time.time()  # PAUSED is committed when operate returns
        released = _released_at(side, job_id)
        out.append(max(durable, released) - began)
        side.svc.ops.operate(job_id, Action.DISCARD, "bench")
    return Latencies("jobctl pause", out)


def jobctl_auto_discard(side: JobctlSide, trials: int) -> Latencies:
    """Delete the target of a running `bench_hold` job through the API `trials` times; latencies in seconds."""
    assert side.api_url is not None
    project = side.project()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    out = []
    with httpx.Client(base_url=side.api_url, headers=headers, timeout=30) as client:
        for _ in range(trials):
            name = f"t{uuid.uuid4().hex[:8]}"
            client.put(f"/api/v1/projects/{project}/targets/record/{name}", json={"attributes": {}}).raise_for_status()
            job_id = side.submit(project, "bench_hold", target=("record", name))
            _wait_started(side, job_id)
            time.sleep(0.02)
            began = time.time()
            client.delete(f"/api/v1/projects/{project}/targets/record/{name}").raise_for_status()
            durable = time.time()
            if side.status(job_id) != "DISCARDED":
                raise RuntimeError(f"job {job_id} is {side.status(job_id)} after its target was deleted")
            released = _released_at(side, job_id)
            out.append(max(durable, released) - began)
    return Latencies("jobctl auto-discard", out)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def raw_revoke(side: RawSide, trials: int) -> Latencies:
    """`revoke(terminate=True)` a running raw task `trials` times; seconds until its process is gone."""
    out = []
    for _ in range(trials):
        key = f"bench:raw:{uuid.uuid4().hex}"
        result = side.raw.hold.delay(key)
        pid = int(wait_for(partial(side.redis.get, key), 30, "the raw task to start", 0.002))  # type: ignore[arg-type]
        time.sleep(0.02)
        began = time.time()
        side.app.control.revoke(result.id, terminate=True)
        wait_for(partial(_gone, pid), 10, "the raw task's process to end", 0.0005)
        out.append(time.time() - began)
    return Latencies("raw revoke(terminate=True)", out)
