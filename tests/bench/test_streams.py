"""The live-updates measurement on a real API process: every stream gets every change, and the row says so."""

from __future__ import annotations

import pytest

from jobctl.bench import streams
from jobctl.bench.sides import JobctlSide

pytestmark = pytest.mark.timeout(120)


def test_every_stream_gets_every_change(side: JobctlSide) -> None:
    (row,) = streams.measure(side, streams=20, changes=3)
    assert "0 of 60 deliveries missing" in row.note
    assert row.holds is not None
    assert row.jobctl.startswith("p50 ")
