"""The outbox against a real Redis: batches go out in order without waiting, error replies are contained, a
lost connection drops what it carried and the next batch connects again; histogram observations sent together
add up to the ones sent one by one."""

from __future__ import annotations

import math
import uuid

import pytest
import redis

from jobctl.scheduler.metrics import Metrics
from jobctl.scheduler.outbox import Outbox
from tests.conftest import REDIS_BASE, missing


@pytest.fixture
def client() -> redis.Redis:
    client = redis.Redis.from_url(f"{REDIS_BASE}/11", socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError:
        missing(f"Redis at {REDIS_BASE}")
    return client


def test_batches_arrive_in_posting_order(client: redis.Redis) -> None:
    key = f"test:outbox:{uuid.uuid4().hex}"
    outbox = Outbox(client)
    for i in range(50):
        batch = client.pipeline(transaction=False)
        batch.rpush(key, i)
        batch.rpush(key, f"{i}b")
        outbox.post(batch)
    assert outbox.settle()
    assert [v.decode() for v in client.lrange(key, 0, -1)] == [x for i in range(50) for x in (str(i), f"{i}b")]
    client.delete(key)


def test_an_error_reply_is_contained(client: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    key = f"test:outbox:{uuid.uuid4().hex}"
    client.set(key, "a string")
    outbox = Outbox(client)
    batch = client.pipeline(transaction=False)
    batch.hincrby(key, "field", 1)  # WRONGTYPE: refused by Redis
    batch.set(f"{key}:after", 1)
    outbox.post(batch)
    assert outbox.settle()
    assert client.get(f"{key}:after") == b"1"  # the rest of the batch was carried out
    assert "refused" in caplog.text
    follow = client.pipeline(transaction=False)
    follow.set(f"{key}:next", 2)
    outbox.post(follow)
    assert outbox.settle() and client.get(f"{key}:next") == b"2"
    client.delete(key, f"{key}:after", f"{key}:next")


def test_a_killed_connection_is_replaced(client: redis.Redis) -> None:
    key = f"test:outbox:{uuid.uuid4().hex}"
    outbox = Outbox(client)
    name = f"outbox-{uuid.uuid4().hex[:8]}"
    first = client.pipeline(transaction=False)
    first.client_setname(name)
    outbox.post(first)
    assert outbox.settle()
    killed = client.client_kill_filter(_type=None, skipme=True, **_by_name(client, name))
    assert killed == 1  # what a Redis restart does to the connection, while nothing is unacknowledged on it
    batch = client.pipeline(transaction=False)
    batch.set(key, "after")
    outbox.post(batch)  # finds the connection closed and sends on a new one
    assert outbox.settle()
    assert client.get(key) == b"after"
    client.delete(key)


def _by_name(client: redis.Redis, name: str) -> dict[str, str]:
    entry = next(c for c in client.client_list() if c.get("name") == name)
    return {"_id": entry["id"]}


def test_observations_together_equal_one_by_one(client: redis.Redis) -> None:
    one, many = Metrics(client, f"q{uuid.uuid4().hex[:6]}"), Metrics(client, f"q{uuid.uuid4().hex[:6]}")
    observations = [("step_duration_seconds", v) for v in (0.01, 0.07, 0.07, 3.0, 7200.0)]
    observations += [("step_waiting_seconds", 0.2)]
    for name, value in observations:
        one.observe(name, value)
    batch = client.pipeline(transaction=False)
    many.observe_many(observations, batch)
    batch.execute()
    for name in ("step_duration_seconds", "step_waiting_seconds"):
        a = client.hgetall(f"jobctl:metrics:{one.queue}:hist:{name}")
        b = client.hgetall(f"jobctl:metrics:{many.queue}:hist:{name}")
        assert a.keys() == b.keys()
        for field in a:
            assert math.isclose(float(a[field]), float(b[field])), field
    assert client.hget(f"jobctl:metrics:{many.queue}:hist:step_duration_seconds", f"le:{math.inf}") == b"1"
    client.delete(*[k for k in client.scan_iter(match=f"jobctl:metrics:{one.queue}:*")])
    client.delete(*[k for k in client.scan_iter(match=f"jobctl:metrics:{many.queue}:*")])
