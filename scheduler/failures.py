"""Structured failures: the one definition of jobctl's own failure codes (docs/contract.md §2.8, "Failure
codes"), and `Failure`, a failure as a step's and a job's `error` record it.

A failure has a `code` (a short machine-readable word), a `message` for people and, optionally, a `hint`: what
to do about it. A step's code sets it with `jobctl.StepFailed(message, code=..., hint=...)`; every other
failure gets one of jobctl's codes below, so a reader (and `GET /api/v1/jobs?error_code=...`) can tell them
apart. A step's own code may not be one of these (`check_code`).

Pure: no database, no Redis, no Celery; the workers, the domain and the API all read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CODES",
    "EXCEPTION",
    "INVALID_OUTPUT",
    "INVALID_PARAMS",
    "MAX_CODE",
    "STEP_FAILED",
    "TIMEOUT",
    "TYPE_CHANGED",
    "WORKER_LOST",
    "Failure",
    "check_code",
    "exhausted",
]

#: The step's code raised an exception other than `jobctl.StepFailed`; the message is `TypeName: text`.
EXCEPTION = "exception"
#: The step raised `jobctl.StepFailed` without a code of its own.
STEP_FAILED = "step_failed"
#: The attempt ran past its step's `timeout_s` and was stopped (docs/authoring.md §10).
TIMEOUT = "timeout"
#: The attempt's worker stopped renewing its lease (it died, or was cut off) and no retry is left (§14).
WORKER_LOST = "worker_lost"
#: The step returned something jobctl cannot store as its output (docs/authoring.md §7).
INVALID_OUTPUT = "invalid_output"
#: The job's stored params are refused by the job type's params model as it is now (docs/authoring.md §15).
INVALID_PARAMS = "invalid_params"
#: The job type's steps changed since the job was submitted (docs/authoring.md §15).
TYPE_CHANGED = "type_changed"

#: Every code of jobctl's own, with the hint a failure with that code carries (None: the message says it all).
CODES: dict[str, str | None] = {
    EXCEPTION: None,
    STEP_FAILED: None,
    TIMEOUT: "make each attempt shorter (checkpoint and resume), or raise the step's timeout_s",
    WORKER_LOST: "the worker process died or lost the database (out of memory, killed, its machine gone): see the"
    " worker's log, then resume the job",
    INVALID_OUTPUT: "return a pydantic model, a dict that JSON can hold, or None",
    INVALID_PARAMS: "the job type's params model no longer accepts these params: restart the job with valid params,"
    " or keep the model compatible",
    TYPE_CHANGED: "restart the job to run the job type's new steps",
}

#: The longest code (`jobs.error_code` and `steps.error_code` hold 64 characters).
MAX_CODE = 64
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def check_code(code: str) -> str:
    """`code` if a step may fail with it: 1 to 64 letters, digits, `_ . : -` (starting with a letter or a digit),
    and none of jobctl's own `CODES`. `ValueError` saying why otherwise."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(
            f"a failure code has 1 to {MAX_CODE} letters, digits, '_', '.', ':' or '-' (starting with a letter or a"
            f" digit), not {code!r}"
        )
    if code in CODES:
        raise ValueError(f"failure code {code!r} is jobctl's own; choose another for the step's failures")
    return code


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as the step's and the job's `error` record it: `code`, `message` and `hint`."""

    code: str
    message: str
    hint: str | None = None

    @classmethod
    def of(cls, code: str, message: str) -> Failure:
        """A failure with one of jobctl's `CODES`, and that code's hint."""
        return cls(code, message, CODES[code])

    def describe(self) -> str:
        """The failure on one line, as the step's log and the job's events show it: `[code] message (hint: ...)`."""
        text = f"[{self.code}] {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


def exhausted(message: str, attempts: int) -> str:
    """`message`, saying that no retry is left after `attempts` attempts (as is, for a first attempt)."""
    return message if attempts <= 1 else f"{message} (after {attempts} attempts, no retry left)"
