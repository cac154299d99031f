"""Chaos fixtures: dedicated live systems that run the `record` job type over the side tables, and the figures
each scenario reports.

By default every scenario runs at its quick scale (part of the normal test command). `make chaos` sets
`JOBCTL_CHAOS_FULL=1` for the full scale and `JOBCTL_CHAOS_REPORT` to a file that `tests/chaos/report.py`
turns into `docs/reliability.md`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.chaos import ledger
from tests.chaos.harness import FULL, Chaos
from tests.integration.conftest import dedicated  # noqa: F401 - the fixture, re-exported for these tests
from tests.integration.system import System

REPORT = os.environ.get("JOBCTL_CHAOS_REPORT")
PLUGINS = "tests.chaos.jobtypes"

_figures: list[dict[str, Any]] = []


@pytest.fixture
def chaos(dedicated: Callable[..., System]) -> Callable[..., Chaos]:  # noqa: F811 - uses the re-exported fixture
    """A factory of dedicated systems (own database and queue) with the `record` job type and the side tables.
    Nothing is started: the test starts the schedulers and workers it wants, and kills them."""

    def make(**overrides: object) -> Chaos:
        live = dedicated(system_class=Chaos, **{"plugins": PLUGINS, **overrides})
        assert isinstance(live, Chaos)
        ledger.install(live.settings.database_url)
        return live

    return make


@pytest.fixture
def report(request: pytest.FixtureRequest, backend: str) -> Callable[..., None]:
    """`report(scenario, rounds=..., jobs=..., lost=..., stuck=..., double_recorded=..., recover_s=..., **more)`
    records one scenario's figures: printed at the end of the run and, under `make chaos`, written to
    `docs/reliability.md`."""

    def record(scenario: str, **figures: Any) -> None:
        row = {"scenario": scenario, "backend": backend, "scale": "full" if FULL else "quick", **figures}
        row["test"] = request.node.nodeid
        row["at"] = time.strftime("%Y-%m-%d %H:%M:%S")
        _figures.append(row)
        if REPORT:
            with open(REPORT, "a", encoding="utf-8") as out:
                out.write(json.dumps(row) + "\n")

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _figures:
        return
    terminalreporter.section("chaos figures")
    for row in _figures:
        shown = {k: v for k, v in row.items() if k not in ("test", "at")}
        terminalreporter.write_line(json.dumps(shown))
