"""Batch operations (docs/contract.md §4): what one job's outcome in a batch is, what a dry run found, and the
refusal of an atomic batch.

`Operations.batch` takes the action on each job, and `Operations.preview_batch` tells what it would do (the same
check, `store.transitions.check_allowed`); this module holds only the values they hand out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobctl.scheduler.errors import Conflict
from jobctl.states import JobStatus

#: The most jobs one batch may name or match; a larger one is refused whole (422) before anything changes.
MAX_BATCH = 1000


@dataclass(frozen=True)
class BatchItem:
    """One job's outcome: done (`status` is the state it left it in, None once deleted) or refused (`status`
    is its current state, None if it does not exist for the caller; `error` says why)."""

    id: str
    ok: bool
    status: JobStatus | None = None
    error: str | None = None


@dataclass(frozen=True)
class BatchPreview:
    """What a batch would do (a dry run): each job's outcome as the batch would report it, and the projects of the
    jobs that would change, by name."""

    items: list[BatchItem]
    projects: list[str]


def not_found(job_id: str) -> BatchItem:
    """The outcome for a job that does not exist, or that the caller may not see (the two look the same)."""
    return BatchItem(job_id, False, None, f"job {job_id!r} not found")


class BatchRefused(Conflict):
    """An atomic batch in which some job refuses the action: nothing was changed. `refused` lists those jobs."""

    def __init__(self, message: str, refused: Sequence[BatchItem]) -> None:
        super().__init__(message)
        self.refused = list(refused)
