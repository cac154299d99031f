"""Dispatch order: priority, then age, round-robin across projects so no backlog starves another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobctl.scheduler.dispatcher import Candidate, fair_order

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cand(
    job: str, project: int, priority: int = 3, age: int = 0, alone: str | None = None, on: str | None = None
) -> Candidate:
    target = ("record", alone, True) if alone else ("record", on, False) if on else None
    return (job, project, priority, T0 + timedelta(seconds=age), target)


def test_priority_then_age_within_a_project() -> None:
    cands = [cand("old-low", 1, 4, 0), cand("new-high", 1, 0, 9), cand("old-high", 1, 0, 1)]
    assert fair_order(cands, 3) == ["old-high", "new-high", "old-low"]


def test_a_big_backlog_does_not_starve_a_small_project() -> None:
    big = [cand(f"a{i}", 1, 3, i) for i in range(1000)]
    small = [cand("b0", 2, 3, 5000)]
    chosen = fair_order(big + small, 2)
    assert chosen == ["a0", "b0"]


def test_round_robin_respects_slots_and_takes_everything_when_room() -> None:
    cands = [cand("a0", 1, age=0), cand("a1", 1, age=1), cand("b0", 2, age=2), cand("c0", 3, age=3)]
    assert fair_order(cands, 3) == ["a0", "b0", "c0"]
    assert sorted(fair_order(cands, 10)) == ["a0", "a1", "b0", "c0"]
    assert fair_order(cands, 0) == []


def test_one_job_per_exclusive_target_in_a_pass() -> None:
    cands = [
        cand("t1-first", 1, age=0, alone="t1"),
        cand("t1-second", 1, age=1, alone="t1"),
        cand("t2", 1, age=2, alone="t2"),
        cand("t1-other-project", 2, age=3, alone="t1"),
        cand("free", 1, age=4),
    ]
    assert sorted(fair_order(cands, 10)) == ["free", "t1-first", "t1-other-project", "t2"]


def test_an_exclusive_job_and_another_on_its_target_are_not_picked_together() -> None:
    shared_first = [
        cand("shared-a", 1, age=0, on="t"),
        cand("shared-b", 1, age=1, on="t"),
        cand("x", 1, age=2, alone="t"),
    ]
    assert sorted(fair_order(shared_first, 10)) == ["shared-a", "shared-b"]
    alone_first = [cand("x", 1, age=0, alone="t"), cand("shared", 1, age=1, on="t")]
    assert fair_order(alone_first, 10) == ["x"]
