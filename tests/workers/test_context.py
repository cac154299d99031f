"""`StepContext.progress`: a plain store while the attempt runs, a `StepStopped` once it is stopped."""

from __future__ import annotations

import pytest

from jobctl.workers.context import StepContext, StepStopped


def _context() -> StepContext:
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
        redis_client=None,  # type: ignore[arg-type]  # not touched by progress or take_reports
        save_checkpoint=lambda _: None,
    )


def test_progress_keeps_only_the_latest_value_for_the_flusher() -> None:
    ctx = _context()
    assert ctx.take_reports() == (0.0, [])
    for i in range(1000):
        ctx.progress(i / 10)
    ctx.log("halfway")
    progress, lines = ctx.take_reports()
    assert progress == 99.9
    assert len(lines) == 1 and lines[0].endswith(" halfway")
    assert ctx.take_reports() == (99.9, [])  # the value stays until the next report; lines are taken once


def test_a_stopped_attempt_raises_at_its_next_progress_call_and_keeps_its_last_report() -> None:
    ctx = _context()
    ctx.progress(40.0)
    ctx.request_stop()
    assert ctx.stopped
    with pytest.raises(StepStopped):
        ctx.progress(41.0)
    with pytest.raises(StepStopped):
        ctx.check_stop()
    assert ctx.take_reports() == (40.0, [])
