"""`Flusher`: each attached attempt is ticked a period after `attach`, whether the thread was idle or still
waiting for the previous attempt's tick (it is woken only in the first case)."""

from __future__ import annotations

import time
from collections.abc import Callable

from jobctl.workers.flusher import Flusher

PERIOD = 0.05


class Recorder:
    def __init__(self) -> None:
        self.ticks: list[float] = []

    def tick(self) -> bool:
        self.ticks.append(time.monotonic())
        return True


def _until(condition: Callable[[], object], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_an_attempt_attached_to_an_idle_flusher_is_ticked_a_period_later() -> None:
    flusher = Flusher(PERIOD)
    first = Recorder()
    flusher.attach(first)
    _until(lambda: first.ticks)
    flusher.detach()
    _until(lambda: flusher._idle)  # the thread now waits for an attempt without a time limit

    second = Recorder()
    attached = time.monotonic()
    flusher.attach(second)
    _until(lambda: second.ticks)
    assert attached + PERIOD <= second.ticks[0] < attached + 1.0


def test_an_attempt_attached_right_after_another_is_ticked_a_period_after_its_own_attach() -> None:
    flusher = Flusher(PERIOD)
    chain = [Recorder() for _ in range(5)]
    attached = []
    for attempt in chain:  # a chain of short steps: the thread is still waiting for a tick that is no longer due
        attached.append(time.monotonic())
        flusher.attach(attempt)
        flusher.detach()
    last = Recorder()
    attached_last = time.monotonic()
    flusher.attach(last)
    _until(lambda: last.ticks)
    assert attached_last + PERIOD <= last.ticks[0] < attached_last + 1.0
    assert not any(attempt.ticks for attempt in chain)  # detached before their tick was due
    flusher.detach()
