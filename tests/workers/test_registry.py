"""The authoring API (`import jobctl`): declaring job types, typed params and outputs, `ctx.iterate`, `Retry`.

What runs on real workers (pause mid-iterate, timeouts, retries, exclusivity, cleanup) is tested in
tests/integration/test_authoring.py; these are the parts that need no services.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel

import jobctl
from jobctl.scheduler.errors import Invalid
from jobctl.workers.context import StepContext, StepStopped
from jobctl.workers.registry import Registry, to_output


class RowsParams(jobctl.Params):
    rows: int = 10


class Counted(BaseModel):
    rows: int


def _context(params: Any = None, checkpoint: dict[str, Any] | None = None, outputs: Any = None) -> StepContext[Any]:
    saved: list[dict[str, Any]] = []
    ctx: StepContext[Any] = StepContext(
        job_id="j",
        step_index=0,
        step_name="s",
        step_count=1,
        attempt=1,
        fence="f",
        params=params,
        target=None,
        checkpoint=checkpoint if checkpoint is not None else {},
        outputs=outputs or {},
        redis_client=None,  # type: ignore[arg-type]  # not used by what these tests call
        save_checkpoint=saved.append,
    )
    ctx.saved = saved  # type: ignore[attr-defined]
    return ctx


def test_the_public_names_are_exported() -> None:
    assert set(jobctl.__all__) >= {"JobType", "Params", "Retry", "Step", "Context", "JobInfo", "StepFailed"}
    for name in jobctl.__all__:
        assert getattr(jobctl, name) is not None
    with pytest.raises(AttributeError):
        jobctl.NoSuchName  # type: ignore[attr-defined]  # noqa: B018


def test_steps_are_declared_in_order_with_weights_and_timeouts() -> None:
    export = jobctl.JobType("t_export", params=RowsParams, target="record", exclusive="target", register=False)

    @export.step(weight=8, timeout_s=30)
    def count(ctx: jobctl.Context[RowsParams]) -> Counted:
        return Counted(rows=ctx.params.rows)

    @export.step
    def write(ctx: jobctl.Context[RowsParams]) -> dict[str, int]:
        return {"rows": ctx.output(count).rows}

    assert [(s.name, s.weight) for s in export.step_list() or []] == [("count", 8.0), ("write", 1.0)]
    assert count.timeout_s == 30 and count.output_model is Counted and write.output_model is None
    params, specs = export.prepare({"rows": 5})
    assert params == {"rows": 5} and [s.name for s in specs] == ["count", "write"]
    assert count(_context(RowsParams(rows=3))) == Counted(rows=3)  # a step is still callable
    with pytest.raises(ValueError, match="has a step named"):
        export.step(lambda ctx: None, name="count")


def test_unknown_or_bad_params_are_refused_as_invalid() -> None:
    export = jobctl.JobType("t_params", params=RowsParams, register=False)
    with pytest.raises(Invalid, match="rows"):
        export.prepare({"rows": "many"})
    with pytest.raises(Invalid, match="colour: Extra inputs"):
        export.prepare({"colour": "red"})


def test_definition_mistakes_are_caught_when_the_type_is_declared() -> None:
    with pytest.raises(ValueError, match="needs a target kind"):
        jobctl.JobType("t_bad", exclusive="target", register=False)
    with pytest.raises(ValueError, match="exclusive"):
        jobctl.JobType("t_bad", target="record", exclusive="job", register=False)
    with pytest.raises(TypeError, match="pydantic model"):
        jobctl.JobType("t_bad", params=dict, register=False)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="weight"):
        jobctl.Step("s", lambda ctx: None, weight=0)
    with pytest.raises(ValueError, match="attempts"):
        jobctl.Retry(attempts=0)


def test_targets_are_checked_against_what_the_type_declares() -> None:
    reg = Registry()
    none = jobctl.JobType("t_none", register=False)
    some = jobctl.JobType("t_some", target="any", register=False)
    rec = jobctl.JobType("t_rec", target="record", register=False)
    reg.check_target(none, None)
    with pytest.raises(Invalid, match="takes no target"):
        reg.check_target(none, ("record", "x"))
    reg.check_target(some, None)
    reg.check_target(some, ("file", "x"))
    with pytest.raises(Invalid, match="needs a record target"):
        reg.check_target(rec, None)
    with pytest.raises(Invalid, match="works on record targets"):
        reg.check_target(rec, ("file", "x"))


def test_a_plan_chooses_the_steps_from_the_params() -> None:
    fan = jobctl.JobType("t_fan", params=RowsParams, register=False)

    def part(ctx: jobctl.Context[RowsParams]) -> None:
        return None

    @fan.plan
    def _plan(params: RowsParams) -> list[jobctl.Step[None]]:
        return [jobctl.Step(f"part-{i}", part) for i in range(params.rows)]

    assert fan.step_list() is None
    assert [s.name for s in fan.prepare({"rows": 2})[1]] == ["part-0", "part-1"]
    with pytest.raises(Invalid, match="planned no steps"):
        fan.prepare({"rows": 0})


def test_outputs_are_stored_as_json_and_read_back_typed() -> None:
    step = jobctl.Step("count", lambda ctx: Counted(rows=1))
    assert to_output(step, Counted(rows=4)) == {"rows": 4}
    assert to_output(step, {"a": 1}) == {"a": 1} and to_output(step, None) is None
    with pytest.raises(TypeError, match="return a pydantic model, a dict or None"):
        to_output(step, 42)
    with pytest.raises(TypeError, match="a dict that JSON cannot hold"):
        to_output(step, {"at": object()})

    def count(ctx: Any) -> Counted:
        return Counted(rows=0)

    typed = jobctl.Step("count", count)
    ctx = _context(outputs={"count": {"rows": 7}})
    assert ctx.output(typed) == Counted(rows=7)
    assert ctx.output("count") == {"rows": 7}
    with pytest.raises(KeyError, match="not a finished earlier step"):
        ctx.output("later")


def test_iterate_reports_progress_checkpoints_and_resumes_where_it_was_saved() -> None:
    ctx = _context()
    seen = []
    for item in ctx.iterate(range(10), checkpoint_every=4):
        seen.append(item)
        if item == 5:
            break  # an attempt stopped after item 5: items 0-3 were checkpointed
    assert seen == list(range(6)) and ctx.checkpoint == {"iterate": 4}
    assert ctx.take_reports()[0] == pytest.approx(50.0)

    resumed = _context(checkpoint=dict(ctx.checkpoint))
    assert list(resumed.iterate(range(10), checkpoint_every=4)) == [4, 5, 6, 7, 8, 9]
    assert resumed.checkpoint == {"iterate": 10} and resumed.take_reports()[0] == 100.0
    assert resumed.saved == [{"iterate": 8}, {"iterate": 10}]  # type: ignore[attr-defined]


def test_iterate_is_a_stop_point() -> None:
    ctx = _context()
    items = ctx.iterate(iter(range(5)), total=5)
    assert next(items) == 0
    ctx.request_stop()
    with pytest.raises(StepStopped):
        next(items)


def test_retry_backs_off_exponentially_up_to_the_cap_never_below_it() -> None:
    retry = jobctl.Retry(attempts=5, backoff_s=1.0, max_delay_s=3.0, jitter=0.1)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0)]:
        delay = retry.delay(attempt)
        assert delay is not None and base <= delay <= base * 1.1
    assert retry.delay(5) is None
    assert jobctl.Retry().delay(1) is None  # one attempt by default


def test_step_failed_describes_code_and_hint() -> None:
    err = jobctl.StepFailed("table is locked", code="locked", hint="retry after the nightly load")
    assert err.describe() == "[locked] table is locked (hint: retry after the nightly load)"
    assert jobctl.StepFailed("plain").describe() == "plain"


def test_importing_jobctl_loads_no_service_libraries() -> None:
    """A plugin module imports `jobctl`; what it loads at that point is only the package itself."""
    code = (
        "import sys, jobctl\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'celery', 'fastapi'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_type_name_declared_in_two_modules_is_refused() -> None:
    reg = Registry()
    first = jobctl.JobType("t_twice", register=False)
    reg.register(first)
    reg.register(jobctl.JobType("t_twice", register=False))  # the same module again: replaces it
    other = jobctl.JobType("t_twice", register=False)
    other.module = "someone_else"
    with pytest.raises(ValueError, match=r"declared twice: in tests\.workers\.test_registry and in someone_else"):
        reg.register(other)


def test_a_job_never_runs_another_steps_code_after_its_type_changed() -> None:
    jt = jobctl.JobType("t_changed", register=False)

    @jt.step
    def first(ctx: jobctl.Context[jobctl.Params]) -> None:
        return None

    assert jt.step_at(jobctl.Params(), 0, "first") is first
    with pytest.raises(ValueError, match="its step 0 was 'old' and is now 'first'; restart the job"):
        jt.step_at(jobctl.Params(), 0, "old")
    with pytest.raises(ValueError, match="its step 1 was 'second' and is now missing"):
        jt.step_at(jobctl.Params(), 1, "second")
