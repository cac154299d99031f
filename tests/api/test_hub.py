"""A stream's place in the event hub: its backlog is bounded, an ended stream stops at once, and a quiet one
gets a keepalive turn. (The hub itself, on a live Redis: tests/integration/test_events.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jobctl.api.hub import Subscriber

T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(scenario)` on a thread of its own: the suite's browser tests leave a loop running on the
    main thread (Playwright's sync API), where asyncio.run refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario).result()


def test_a_stream_that_falls_a_backlog_behind_ends_as_slow() -> None:
    async def scenario() -> tuple[str | None, str | None, str | None]:
        sub = Subscriber(lambda project: True, backlog=3)
        for n in range(3):
            sub.offer(f"line {n}\n")
        first = await sub.next(1)
        sub.offer("line 3\n")  # 3 waiting again: still within the backlog
        sub.offer("line 4\n")  # one too many
        return first, sub.ended, await sub.next(1)

    assert run(scenario()) == ("line 0\n", "slow", None)


def test_a_quiet_stream_gets_an_empty_line_when_the_timeout_passes() -> None:
    async def scenario() -> tuple[str | None, str | None]:
        sub = Subscriber(lambda project: True, backlog=3)
        quiet = await sub.next(0.01)
        sub.offer("line\n")
        return quiet, await sub.next(0.01)

    assert run(scenario()) == ("", "line\n")


def test_ending_wakes_a_waiting_stream() -> None:
    async def scenario() -> str | None:
        sub = Subscriber(lambda project: True, backlog=3)
        waiting = asyncio.create_task(sub.next(10))
        await asyncio.sleep(0)
        sub.end("redis")
        return await asyncio.wait_for(waiting, 1)

    assert run(scenario()) is None
