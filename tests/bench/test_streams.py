"""The live-updates measurement on a real API process: every stream gets every change, and the row says so."""

from __future__ import annotations

import asyncio
import threading

import pytest

from jobctl.bench import streams
from jobctl.bench.report import Row
from jobctl.bench.sides import JobctlSide

pytestmark = pytest.mark.timeout(120)


def test_every_stream_gets_every_change(side: JobctlSide) -> None:
    (row,) = streams.measure(side, streams=20, changes=3)
    assert "0 of 60 deliveries missing" in row.note
    assert row.holds is not None
    assert row.jobctl.startswith("p50 ")


def test_it_runs_where_an_event_loop_is_already_running(side: JobctlSide) -> None:
    # The whole suite once ran it after Playwright's sync API had left a loop running on the main thread; here
    # the loop runs on a thread of the test's own, so the test does not depend on what ran before it.
    got: list[Row] = []

    async def inside_a_loop() -> None:
        got.extend(streams.measure(side, streams=2, changes=1))

    thread = threading.Thread(target=asyncio.run, args=(inside_a_loop(),))
    thread.start()
    thread.join(60)
    (row,) = got
    assert "0 of 2 deliveries missing" in row.note
