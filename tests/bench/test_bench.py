"""The benchmark's helpers: percentiles, paired ratios and the report (no timing is asserted here)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobctl.bench.env import Machine
from jobctl.bench.notes import NOTES
from jobctl.bench.report import Row, limits, markdown, write
from jobctl.bench.stats import median, percentile, ratios


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0  # order of the input does not matter


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_every_row_that_can_miss_has_its_limits_in_the_notes() -> None:
    """Each measurement with a target that a run may miss points at the notes' bullet on what limits it."""
    for subject in (
        "throughput, SQLite",
        "stop latency",
        "auto-discard latency",
        "the user's path",
        "submission latency",
        "bulk submission",
        "the API under load",
        "durable peer",
        "live updates",
        "progress cost",
        "list API over",
        "dispatch rate",
        "worker memory",
    ):
        assert limits(Row(subject, "", "", "", "", False), NOTES) is not None, subject


def test_median_of_paired_ratios() -> None:
    assert ratios([2.0, 3.0, 8.0], [1.0, 3.0, 2.0]) == [2.0, 1.0, 4.0]
    assert median(ratios([2.0, 3.0, 8.0], [1.0, 3.0, 2.0])) == 2.0
    with pytest.raises(ValueError):
        ratios([1.0], [1.0, 2.0])


def test_report_names_machine_date_command_and_verdicts(tmp_path: Path) -> None:
    rows = [
        Row("throughput", "10 jobs/s", "20 chains/s", "ratio 0.50", "≥ 1.0", False, "3 rounds"),
        Row("stop latency", "p99 20 ms", "p99 5 ms", "p99 20 ms", "p99 ≤ 100 ms", True),
        Row("context", "1", "2", "-", "(context)", None),
    ]
    text = markdown(
        rows,
        machine=Machine(2, "Test CPU", 8.0, "3.11.7"),
        date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        command="jobctl bench --quick",
        wall_s=123.4,
        conditions=["concurrency 2 on both sides"],
        notes="## What limits the figures\n\nthe database",
    )
    assert "2 CPUs (Test CPU), 8.0 GiB RAM" in text
    assert "2026-01-02 03:04:05" in text
    assert "`jobctl bench --quick`" in text
    assert "123 s" in text
    assert "| throughput | 10 jobs/s | 20 chains/s | ratio 0.50 | ≥ 1.0 | MISSED |" in text
    assert "| stop latency | p99 20 ms | p99 5 ms | p99 20 ms | p99 ≤ 100 ms | met |" in text
    assert "| context | 1 | 2 | - | (context) | — |" in text
    assert "- **throughput**: 3 rounds" in text
    assert text.rstrip().endswith("the database")
    out = tmp_path / "docs" / "benchmarks.md"
    told = markdown(
        [Row("submission latency, SQLite: POST", "p50 3 ms", "—", "p50 3 ms", "p50 ≤ 2 ms", False)],
        machine=Machine(2, "Test CPU", 8.0, "3.11.7"),
        date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        command="jobctl bench",
        wall_s=1.0,
        conditions=[],
        notes="## What limits the figures\n\n- **Submission latency.** The commit's WAL flush.\n",
    )
    assert "| p50 ≤ 2 ms | MISSED: what limits it is under “Submission latency” below |" in told
    write(out, text)
    assert out.read_text() == text
