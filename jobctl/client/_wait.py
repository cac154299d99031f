"""How a job handle waits, for the sync and the async client alike: the polling intervals, and what a job
that ended means for `result()`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jobctl.client._errors import JobDiscarded, JobFailed
from jobctl.client._models import Job, JobStatus

FIRST_POLL_S = 0.02
LONGEST_POLL_S = 0.5


def intervals() -> Iterator[float]:
    """Seconds between two reads of a job being waited for: soon at first (short jobs end fast), then less
    often, never more than `LONGEST_POLL_S` apart."""
    wait = FIRST_POLL_S
    while True:
        yield wait
        wait = min(LONGEST_POLL_S, wait * 1.5)


def timed_out(job: Job, timeout: float) -> TimeoutError:
    return TimeoutError(f"job {job.id} is still {job.status.value} after {timeout:g}s")


def outcome(job: Job) -> Any:
    """The result of a job that ended: its `result` if FINISHED; `JobFailed` for ERROR; `JobDiscarded`."""
    if job.status is JobStatus.ERROR:
        raise JobFailed(job)
    if job.status is JobStatus.DISCARDED:
        raise JobDiscarded(job)
    return job.result
