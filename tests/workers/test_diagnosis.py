"""Structured failures and step info in the worker, without a worker: what `jobctl.StepFailed` accepts, what an
attempt that raised fails with (`runtime.failure_of`, by where it raised), and `ctx.info`'s merging and bounds."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import jobctl
from jobctl.scheduler import failures
from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.failures import Failure, check_code, exhausted
from jobctl.workers.context import MAX_INFO_KEYS, MAX_INFO_TEXT, StepContext
from jobctl.workers.registry import StepsChanged
from jobctl.workers.runtime import failure_of


def _context(info: dict[str, Any] | None = None) -> StepContext[Any]:
    return StepContext(
        job_id="j1",
        step_index=0,
        step_name="s1",
        step_count=1,
        attempt=1,
        fence="f1",
        params={},
        target=None,
        checkpoint={},
        outputs={},
        redis_client=None,  # type: ignore[arg-type]  # not touched by info
        save_checkpoint=lambda _: None,
        info=info,
    )


# ----------------------------------------------------------------------------------------- StepFailed codes


@pytest.mark.parametrize("code", ["no-columns", "E1", "locked", "db.timeout", "http:503", "a" * 64])
def test_a_step_may_fail_with_a_code_of_its_own(code: str) -> None:
    failed = jobctl.StepFailed("the table is locked", code=code, hint="wait for the load")
    assert (failed.message, failed.code, failed.hint) == ("the table is locked", code, "wait for the load")


@pytest.mark.parametrize("code", ["", " x", "has space", "-leading", "a" * 65, "naïve", "x\n"])
def test_a_code_that_is_not_a_short_word_is_refused_where_the_step_raises_it(code: str) -> None:
    with pytest.raises(ValueError, match="a failure code has 1 to 64"):
        jobctl.StepFailed("boom", code=code)


@pytest.mark.parametrize("code", sorted(failures.CODES))
def test_jobctls_own_codes_are_not_a_steps_to_use(code: str) -> None:
    with pytest.raises(ValueError, match="is jobctl's own"):
        jobctl.StepFailed("boom", code=code)
    assert check_code("my-" + code) == "my-" + code


def test_failures_describe_themselves_on_one_line() -> None:
    assert Failure("locked", "table is locked", "wait").describe() == "[locked] table is locked (hint: wait)"
    assert Failure("exception", "KeyError: 'x'").describe() == "[exception] KeyError: 'x'"
    assert Failure.of(failures.TIMEOUT, "too slow").hint == failures.CODES[failures.TIMEOUT]
    assert exhausted("boom", 1) == "boom"
    assert exhausted("boom", 3) == "boom (after 3 attempts, no retry left)"


# ---------------------------------------------------------------------------------------- what failed


ROOT = Path("/srv/jobctl/files")


@pytest.mark.parametrize(
    ("exc", "stage", "expected"),
    [
        (jobctl.StepFailed("no columns", code="no-columns", hint="put columns"), failures.EXCEPTION,
         Failure("no-columns", "no columns", "put columns")),
        (jobctl.StepFailed("plain"), failures.EXCEPTION, Failure(failures.STEP_FAILED, "plain")),
        (KeyError("columns"), failures.EXCEPTION, Failure(failures.EXCEPTION, "KeyError: 'columns'")),
        (Invalid("invalid params for job type 'x': n: too big"), failures.INVALID_PARAMS,
         Failure.of(failures.INVALID_PARAMS, "invalid params for job type 'x': n: too big")),
        (StepsChanged("job type 'x' changed"), failures.TYPE_CHANGED,
         Failure.of(failures.TYPE_CHANGED, "job type 'x' changed")),
        (RuntimeError("the plan broke"), failures.TYPE_CHANGED,
         Failure(failures.EXCEPTION, "RuntimeError: the plan broke")),
        (jobctl.StepFailed("from the plan", code="plan"), failures.TYPE_CHANGED, Failure("plan", "from the plan")),
        (TypeError("step 's' returned a int; return a pydantic model, a dict or None"), failures.INVALID_OUTPUT,
         Failure.of(failures.INVALID_OUTPUT, "step 's' returned a int; return a pydantic model, a dict or None")),
    ],
)  # fmt: skip
def test_an_attempt_fails_with_the_code_of_the_part_that_raised(exc: Exception, stage: str, expected: Failure) -> None:
    assert failure_of(exc, stage, ROOT) == expected


def test_a_failures_message_and_hint_name_files_relative_to_the_file_root(tmp_path: Path) -> None:
    path = tmp_path / "in" / "orders.csv"
    raised = jobctl.StepFailed(f"cannot read {path}", code="unreadable", hint=f"check {path}")
    assert failure_of(raised, failures.EXCEPTION, tmp_path) == Failure(
        "unreadable", "cannot read in/orders.csv", "check in/orders.csv"
    )
    assert str(tmp_path) not in failure_of(OSError(f"{path}: denied"), failures.EXCEPTION, tmp_path).message


# ------------------------------------------------------------------------------------------------ info


def test_info_merges_over_earlier_keys_and_the_flusher_takes_it_whole_once() -> None:
    ctx = _context({"rows": 10, "app": "a-1"})  # what earlier attempts of the step reported
    assert ctx.take_info() is None  # nothing new yet
    ctx.info(rows=20, url="https://example.com/app/1")
    ctx.info(done=True, ratio=0.5, note=None)
    assert ctx.take_info() == {
        "rows": 20,
        "app": "a-1",
        "url": "https://example.com/app/1",
        "done": True,
        "ratio": 0.5,
        "note": None,
    }
    assert ctx.take_info() is None
    ctx.give_back_info()  # the write failed: the next flush writes it again
    assert ctx.take_info() is not None
    ctx.info()  # nothing reported: nothing to write
    assert ctx.take_info() is None


@pytest.mark.parametrize(
    ("details", "error", "says"),
    [
        ({"text": "x" * (MAX_INFO_TEXT + 1)}, ValueError, "at most 1000"),
        ({"ratio": math.nan}, ValueError, "JSON cannot hold it"),
        ({"ratio": math.inf}, ValueError, "JSON cannot hold it"),
        ({"rows": [1, 2]}, TypeError, "a string, a number, a boolean or None"),
        ({"nested": {"a": 1}}, TypeError, "is a dict"),
        ({"": 1}, ValueError, "an info key has 1 to 64"),
        ({"k" * 65: 1}, ValueError, "an info key has 1 to 64"),
        ({f"k{i}": i for i in range(MAX_INFO_KEYS + 1)}, ValueError, "at most 50 keys"),
    ],
)
def test_info_out_of_bounds_raises_in_the_step_and_stores_nothing_of_the_call(
    details: dict[str, Any], error: type[Exception], says: str
) -> None:
    ctx = _context({"kept": 1})
    with pytest.raises(error, match=says):
        ctx.info(ok=2, **details)
    assert ctx.take_info() is None
    ctx.info(ok=2)
    assert ctx.take_info() == {"kept": 1, "ok": 2}


def test_the_key_bound_counts_the_keys_kept_from_earlier_attempts() -> None:
    ctx = _context({f"k{i}": i for i in range(MAX_INFO_KEYS)})
    ctx.info(k0="replaced")  # a key it has already: still 50
    with pytest.raises(ValueError, match="would make it 51"):
        ctx.info(one_more=1)
    assert ctx.take_info() == {**{f"k{i}": i for i in range(MAX_INFO_KEYS)}, "k0": "replaced"}
