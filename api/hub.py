"""One Redis subscription per API process, shared by every open event stream (`GET /api/v1/events`).

The hub reads the events channel once and hands each change, parsed and rendered once, to every stream that may
see it. A stream keeps a backlog of at most `BACKLOG` changes; a client that falls further behind is
disconnected rather than left to fall ever further (or to make the process hold its backlog): it reconnects and
reads the jobs again, as after any disconnection (docs/contract.md, "Live events").

Promises:
- a stream registered by `subscribe` gets every change published after `subscribe` returned, in order, until it
  ends;
- `subscribe` raises the Redis error if Redis cannot be reached, and then nothing is registered;
- when the Redis connection is lost, every stream ends (`ended == "redis"`); the next `subscribe` connects again;
- a stream opened with a `key` (its caller's token hash) ends within `RECHECK_S` seconds, plus the time of one
  check, once its caller's access differs from the `access` it was opened with, or the token is no longer known
  (`ended == "access"`): a removed role stops its open streams too, not only its next requests. The hub checks
  every distinct key once per period, whatever the number of streams;
- the hub holds a Redis connection only while at least one stream is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Collection

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from jobctl.scheduler import keys

log = logging.getLogger(__name__)

BACKLOG = 1_000  # changes a stream may fall behind by before it is disconnected

RECHECK_S = 1.0  # how often the access of the open streams' callers is read again

Shown = Callable[[object], bool]  # a stream's filter: given a change's project name, whether it sees the change
#: Given callers' keys (token hashes), what each may see now, compared by equality with a stream's `access` (keys
#: that are no longer valid left out). Blocking: it reads the database, on a thread.
AccessLookup = Callable[[Collection[str]], dict[str, object]]


class Subscriber:
    """One stream's place in the hub: the rendered changes it has not sent yet."""

    def __init__(self, shown: Shown, backlog: int, key: str | None = None, access: object = None) -> None:
        self.shown = shown
        self.backlog = backlog
        self.key = key  # the caller's token hash, whose access the hub keeps checking (None: never checked)
        self.access = access  # what the caller could see when the stream opened
        self.ended: str | None = None  # why: "slow" (fell `backlog` behind), "redis" (connection lost), "access"
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()

    def offer(self, line: str) -> None:
        """Queue `line`, or end the stream as too slow if `backlog` lines are already waiting."""
        if self.ended is not None:
            return
        if self._queue.qsize() >= self.backlog:
            self.end("slow")
        else:
            self._queue.put_nowait(line)

    def end(self, reason: str) -> None:
        """End the stream: `next` answers None from now on."""
        if self.ended is None:
            self.ended = reason
            self._queue.put_nowait(None)  # wakes a `next` that is waiting

    async def next(self, timeout: float) -> str | None:
        """The next line to send; "" if none came within `timeout` seconds; None once the stream has ended."""
        if self.ended is not None:
            return None
        if self._queue.empty():
            try:
                async with asyncio.timeout(timeout):
                    line = await self._queue.get()
            except TimeoutError:
                return ""
        else:
            line = self._queue.get_nowait()
        return None if self.ended is not None else line


class EventHub:
    """The process's one subscription to the events channel, fanned out to the subscribers. Bound to the event
    loop it was created on."""

    def __init__(
        self, redis_url: str, backlog: int = BACKLOG, lookup: AccessLookup | None = None, recheck_s: float = RECHECK_S
    ) -> None:
        self.redis_url = redis_url
        self.backlog = backlog
        self.lookup = lookup
        self.recheck_s = recheck_s
        self._watcher: asyncio.Task[None] | None = None
        self.loop = asyncio.get_running_loop()
        self._subscribers: set[Subscriber] = set()
        self.disconnected: Counter[str] = Counter()  # streams the server ended, by reason ("slow", "redis", ...)
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] = self.loop.create_future()  # the reader's subscription is confirmed
        self._lock = asyncio.Lock()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def subscribe(self, shown: Shown, key: str | None = None, access: object = None) -> Subscriber:
        """Register a stream; once this returns, every later change reaches it (see the module's promises). With
        `key`, the stream ends once `lookup` no longer gives `access` for it."""
        async with self._lock:
            if self._reader is None or self._reader.done():
                self._ready = self.loop.create_future()
                self._reader = asyncio.create_task(self._read(self._ready), name="jobctl-event-hub")
            # Shielded: a stream that goes away while it waits leaves the subscription to complete for the others
            # (who must not return before it is confirmed either).
            await asyncio.shield(self._ready)
            subscriber = Subscriber(shown, self.backlog, key, access)
            self._subscribers.add(subscriber)
            if key is not None and self.lookup is not None and (self._watcher is None or self._watcher.done()):
                self._watcher = asyncio.create_task(self._watch(self.lookup), name="jobctl-event-access")
            return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a stream; the last one to go closes the hub's Redis connection."""
        self._subscribers.discard(subscriber)
        if not self._subscribers and self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if not self._subscribers and self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    async def _watch(self, lookup: AccessLookup) -> None:
        """Every `recheck_s`, read the access of every distinct caller with an open stream, in one lookup, and end
        the streams whose caller's access changed or whose token is gone. A failed lookup is logged and tried
        again next period (the streams go on: the requests of those callers are checked on their own)."""
        while True:
            await asyncio.sleep(self.recheck_s)
            keys_ = {s.key for s in self._subscribers if s.key is not None and s.ended is None}
            if not keys_:
                continue
            try:
                now = await asyncio.to_thread(lookup, keys_)
            except Exception as exc:  # a database that is briefly away must not end every stream
                log.warning("could not check the access of open event streams: %s", exc)
                continue
            for subscriber in list(self._subscribers):
                if subscriber.key is None or subscriber.ended is not None:
                    continue
                if subscriber.key not in now or now[subscriber.key] != subscriber.access:
                    subscriber.end("access")
                    self._subscribers.discard(subscriber)
                    self.disconnected["access"] += 1
                    log.info("event stream ended: its caller's access changed")

    async def _read(self, ready: asyncio.Future[None]) -> None:
        client = aioredis.Redis.from_url(self.redis_url)
        pubsub = client.pubsub()
        try:
            try:
                await pubsub.subscribe(keys.EVENTS)
            except RedisError as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is not None:
                    self._deliver(message["data"])
        except RedisError as exc:
            log.warning("event streams ended: Redis connection lost (%s)", exc)
            for subscriber in self._subscribers:
                subscriber.end("redis")
            self.disconnected["redis"] += len(self._subscribers)
            self._subscribers.clear()
        finally:
            with contextlib.suppress(RedisError, asyncio.CancelledError):
                await pubsub.aclose()
            with contextlib.suppress(RedisError, asyncio.CancelledError):
                await client.aclose()  # even when the subscription's close failed

    def _deliver(self, data: bytes | str) -> None:
        change = json.loads(data)
        project = change.get("project")
        line = f"event: job\ndata: {json.dumps(change, separators=(',', ':'))}\n\n"
        for subscriber in list(self._subscribers):
            if subscriber.shown(project):
                subscriber.offer(line)
                if subscriber.ended == "slow":
                    log.warning("event stream disconnected: its client fell %d changes behind", self.backlog)
                    self.disconnected["slow"] += 1
                    self._subscribers.discard(subscriber)
