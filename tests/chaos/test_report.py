"""`tests/chaos/report.py`: the page is rebuilt from a run's figures, keeps its hand-written end, and with
`--merge` keeps the rows (and notes, and run line) of the scenarios the run did not measure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chaos import report
from tests.chaos.harness import Checks

ROW = {
    "scenario": "several hosts: partition",
    "backend": "postgresql",
    "scale": "full",
    "rounds": 10,
    "jobs": 120,
    "lost": 0,
    "stuck": 0,
    "double_recorded": 0,
    "double_executed": 0,
    "self_fence_s": 1.7,
    "recover_s": 4.1,
    "takeovers": 20,
    "test": "tests/chaos/hosts/test_partition.py::test",
    "at": "2026-12-04 10:00:00",
    "passed": True,
    "notes": "ten cuts",
}

OLD_PAGE = f"""# Reliability

Run: `make chaos` on 2026-12-03, vm (2 cores, Python 3.11.7).

| scenario | backend | scale | rounds | jobs | lost | stuck | double recorded | double executed | recover s | passed |
|---|---|---|---|---|---|---|---|---|---|---|
| worker crash | sqlite | full | 20 | 150 | 0 | 0 | 0 | 0 | 7.36 | yes |
| several hosts: partition | postgresql | full | 1 | 6 | 0 | 0 | 0 | 0 | 9.9 | NO |

## Other figures and notes

- **worker crash** (sqlite, `tests/chaos/test_worker_crash.py::test`): settle s: 9.57. 20 rounds
- **several hosts: partition** (postgresql, `old`): old figures.

{report.KEEP}

## Several hosts

The timing rule, by hand.
"""


def test_a_merge_keeps_the_rows_it_did_not_measure_and_the_hand_written_end() -> None:
    page = report.render([ROW], "make chaos (hosts)", OLD_PAGE, merge=True)
    assert "| worker crash | sqlite | full | 20 | 150 | 0 | 0 | 0 | 0 |  | 7.36 | yes |" in page  # no self-fence cell
    assert "| several hosts: partition | postgresql | full | 10 | 120 | 0 | 0 | 0 | 0 | 1.7 | 4.1 | yes |" in page
    assert "| 9.9 | NO |" not in page and "old figures" not in page  # re-measured: replaced
    assert "- **worker crash** (sqlite, `tests/chaos/test_worker_crash.py::test`): settle s: 9.57. 20 rounds" in page
    assert "takeovers: 20. ten cuts" in page
    assert "Run: `make chaos` on 2026-12-03, vm (2 cores, Python 3.11.7)." in page
    assert "Rows of several hosts: partition: `make chaos (hosts)` on" in page
    assert page.rstrip().endswith("The timing rule, by hand.") and page.count(report.KEEP) == 1
    assert report.render([ROW], "x", page, merge=True).count("| worker crash |") == 1  # merging again: the same


def test_a_full_run_rewrites_every_row_but_keeps_the_hand_written_end(tmp_path: Path) -> None:
    results, page = tmp_path / "results.jsonl", tmp_path / "reliability.md"
    results.write_text(json.dumps(ROW) + "\n")
    page.write_text(OLD_PAGE)
    assert report.main(["report", str(results), str(page), "make chaos"]) == 0
    text = page.read_text()
    assert "worker crash" not in text and "Rows of" not in text
    assert "| self fence s | recover s | passed |" in text
    assert text.rstrip().endswith("The timing rule, by hand.")


def test_a_scenarios_checks_judge_the_row_and_the_test_alike() -> None:
    """`Checks.passed` (the row's verdict) is false exactly when `assert_all` fails, at the first condition that
    does not hold, with its message (a function's only when it is needed)."""
    calls: list[str] = []
    fine = Checks(None).add(True, lambda: calls.append("asked") or "never")
    assert fine.passed
    fine.assert_all()
    assert calls == []
    broken = Checks(None).add(True, "first").add(False, lambda: "the second").add(False, "the third")
    assert not broken.passed
    with pytest.raises(AssertionError, match="the second"):
        broken.assert_all()
    assert not Checks("the body failed").passed
