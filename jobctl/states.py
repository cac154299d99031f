"""Job and step states, the user operations and the one transition table (docs/contract.md §2).

The one definition of each: the server, the Python client, the CLI and the web page (through
`/ui/config.json`) all read them from here. It imports nothing, so the client can use it without the server.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job's (or a step's) state, in the order docs/contract.md §2 lists them. DISCARDED and FINISHED are
    final: a job never leaves them."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    ERROR = "ERROR"
    DISCARDED = "DISCARDED"
    FINISHED = "FINISHED"

    @property
    def final(self) -> bool:
        """DISCARDED or FINISHED: the job never leaves it."""
        return self in FINAL

    @property
    def ended(self) -> bool:
        """FINISHED, DISCARDED or ERROR: the job will not move on by itself."""
        return self in ENDED


StepStatus = JobStatus  # steps use the same six names (docs/contract.md §2)

FINAL = frozenset({JobStatus.DISCARDED, JobStatus.FINISHED})
NON_FINAL = frozenset(JobStatus) - FINAL
#: the states a job does not leave by itself: the final ones and ERROR (only an operation moves it on)
ENDED = FINAL | {JobStatus.ERROR}


class Action(StrEnum):
    """Everything that changes a job's status - and `EDIT`, which changes a stopped job's params and keeps its
    status. The first five are the user operations; each is recorded as an event of its name."""

    PAUSE = "pause"
    RESUME = "resume"
    RESTART = "restart"
    DISCARD = "discard"
    DELETE = "delete"
    # internal actions, taken by the API, the scheduler, a worker or the target check
    SUBMIT = "submit"
    DISPATCH = "dispatch"
    RETRY = "retry"
    RETRY_LATER = "retry-later"
    FINISH = "finish"
    FAIL = "fail"
    AUTO_DISCARD = "auto-discard"
    # a change that keeps the job's state (`IN_PLACE`), taken by a user
    EDIT = "edit"


OPERATIONS: tuple[Action, ...] = (Action.PAUSE, Action.RESUME, Action.RESTART, Action.DISCARD, Action.DELETE)

S = JobStatus
#: action -> (states it is allowed from, state it leads to; None = the job is removed)
TRANSITIONS: dict[Action, tuple[frozenset[JobStatus], JobStatus | None]] = {
    Action.PAUSE: (frozenset({S.PENDING, S.RUNNING}), S.PAUSED),
    Action.RESUME: (frozenset({S.PAUSED, S.ERROR}), S.PENDING),
    Action.RESTART: (frozenset({S.RUNNING, S.PAUSED, S.ERROR}), S.PENDING),
    Action.DISCARD: (frozenset({S.PENDING, S.RUNNING, S.PAUSED, S.ERROR}), S.DISCARDED),
    Action.DELETE: (frozenset({S.FINISHED, S.DISCARDED}), None),
    Action.SUBMIT: (frozenset(), S.PENDING),  # the only way into the table: a new job
    Action.DISPATCH: (frozenset({S.PENDING}), S.RUNNING),
    Action.RETRY: (frozenset({S.RUNNING}), S.RUNNING),  # a lost attempt re-sent; the job stays RUNNING
    Action.RETRY_LATER: (frozenset({S.RUNNING}), S.PENDING),  # a failed step waits for its retry delay
    Action.FINISH: (frozenset({S.RUNNING}), S.FINISHED),
    Action.FAIL: (frozenset({S.RUNNING}), S.ERROR),
    Action.AUTO_DISCARD: (NON_FINAL, S.DISCARDED),
}
#: action -> the states it may be taken in, for the actions that change a job but not its state: editing the
#: params of a job that is stopped (docs/contract.md §2.2). Their events go from a state to the same state.
IN_PLACE: dict[Action, frozenset[JobStatus]] = {
    Action.EDIT: frozenset({S.PAUSED, S.ERROR}),
}
del S


def allowed_from(action: Action) -> frozenset[JobStatus]:
    """The states `action` may be taken from (or, for an `IN_PLACE` action, in)."""
    return TRANSITIONS[action][0] if action in TRANSITIONS else IN_PLACE[action]


def target_of(action: Action) -> JobStatus | None:
    """The state `action` leads to (None for delete). An `IN_PLACE` action leads nowhere: `KeyError`."""
    return TRANSITIONS[action][1]


def allowed_operations(status: JobStatus) -> list[str]:
    """The user operations allowed in `status`, in the order of docs/contract.md §2."""
    return [str(op) for op in OPERATIONS if status in allowed_from(op)]


def is_valid_path(events: list[tuple[str | None, str | None, str]]) -> bool:
    """True if a sequence of (from, to, action) events is a path the table allows, starting with submit (an
    `IN_PLACE` action stays where it is)."""
    current: str | None = None
    for index, (src, dst, action) in enumerate(events):
        act = Action(action)
        if (act is Action.SUBMIT) != (index == 0):
            return False
        if index and (src is None or src != current or JobStatus(src) not in allowed_from(act)):
            return False
        if dst != (src if act in IN_PLACE else target_of(act)):
            return False
        current = dst
    return True
