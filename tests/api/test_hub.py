"""A stream's place in the event hub: its backlog is bounded, an ended stream stops at once, and a quiet one
gets a keepalive turn. (The hub itself, on a live Redis: tests/integration/test_events.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import redis.asyncio as aioredis

from jobctl.api.hub import EventHub, Subscriber
from jobctl.scheduler import keys
from jobctl.scheduler.settings import Settings

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


def test_a_stream_gone_while_the_hub_subscribes_leaves_the_hub_working(settings: Settings) -> None:
    """The first stream starts the hub's reader and waits for its subscription; if that stream's request is
    cancelled meanwhile, the reader still subscribes and serves the next stream (it used to die on the
    abandoned wait, with an exception nobody retrieved)."""

    async def scenario() -> tuple[bool, str | None]:
        hub = EventHub(settings.redis_url)
        first = asyncio.create_task(hub.subscribe(lambda project: True))
        await asyncio.sleep(0)  # the reader is started, its subscription not yet confirmed
        reader = hub._reader
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        second = await asyncio.wait_for(hub.subscribe(lambda project: True), 5)
        reader_alive = reader is not None and hub._reader is reader and not reader.done()  # the same one, alive
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            await client.publish(keys.EVENTS, json.dumps({"id": "j", "project": "p", "status": "PENDING"}))
            line = await second.next(5)
        finally:
            await client.aclose()
            hub.unsubscribe(second)
        return reader_alive, line

    alive, line = run(scenario())
    assert alive and line is not None and '"id":"j"' in line


def test_the_hub_checks_each_caller_once_a_period_and_ends_only_the_streams_whose_access_changed(
    settings: Settings,
) -> None:
    async def scenario() -> tuple[list[set[str]], list[str | None]]:
        answers: list[Any] = [{"a": "X", "b": "Y"}, RuntimeError("the database is away"), {"a": "X"}]
        asked: list[set[str]] = []

        def lookup(keys_: Any) -> dict[str, Any]:
            asked.append(set(keys_))
            answer = answers.pop(0) if answers else {"a": "X"}
            if isinstance(answer, Exception):
                raise answer
            return dict(answer)

        hub = EventHub(settings.redis_url, lookup=lookup, recheck_s=0.05)
        streams = [
            await hub.subscribe(lambda project: True, "a", "X"),
            await hub.subscribe(lambda project: True, "a", "X"),
            await hub.subscribe(lambda project: True, "b", "Y"),
            await hub.subscribe(lambda project: True),  # no key: never checked
        ]
        for _ in range(100):
            if streams[2].ended:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.15)  # more periods: nothing else ends
        for stream in streams:
            hub.unsubscribe(stream)
        return asked, [s.ended for s in streams]

    asked, ended = run(scenario())
    assert asked[:3] == [{"a", "b"}, {"a", "b"}, {"a", "b"}]  # one lookup a period, each key once; a failure ends none
    assert all(keys_ == {"a"} for keys_ in asked[3:])
    assert ended == [None, None, "access", None]
