"""Webhooks on a live system (docs/contract.md §4.11): a scheduler and a prefork worker as subprocesses, the API
as a subprocess, and real local receivers. Jobs that finish and fail get exactly the deliveries their webhooks
subscribe to, signed with each webhook's secret; a receiver that answers 500 is retried until it answers 200; one
that is down - while the scheduler is killed and started again - gets everything once it is back; one that hangs
delays neither the jobs nor another webhook's deliveries. And the Python client manages webhooks, sync and
async."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from jobctl.client import AsyncClient, Client, Invalid, JobStatus, NotFound
from jobctl.scheduler.settings import Settings
from tests.aio import run
from tests.integration.system import System, wait_until
from tests.live import live_system
from tests.webhook_receiver import Received, Receiver

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer test-admin-token"}
TIMEOUT_S = 1.0  # the system's JOBCTL_WEBHOOK_TIMEOUT_S
BACKOFF_S = 0.2  # and its JOBCTL_WEBHOOK_BACKOFF_S


@pytest.fixture(scope="module")
def hooked(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A live system of its own, with short webhook timings, and its API."""
    yield from live_system(
        settings,
        backend,
        tmp_path_factory,
        "webhooks",
        webhook_timeout_s=TIMEOUT_S,
        webhook_backoff_s=BACKOFF_S,
        webhook_give_up_s=300.0,
    )


@pytest.fixture(scope="module")
def api(hooked: System) -> Iterator[httpx.Client]:
    _proc, url = hooked.start_api()
    with httpx.Client(base_url=url, headers=ADMIN, timeout=10) as client:
        yield client


@pytest.fixture
def project(hooked: System, api: httpx.Client) -> Iterator[str]:
    """A fresh project; its webhooks are deleted afterwards (nothing left to send into the next test)."""
    name = hooked.project()
    yield name
    for hook in api.get(f"/api/v1/projects/{name}/webhooks").json():
        api.delete(f"/api/v1/projects/{name}/webhooks/{hook['id']}")
    hooked.settle(name)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()


def receiver(receivers: list[Receiver]) -> Receiver:
    made = Receiver()
    receivers.append(made)
    return made


def create(api: httpx.Client, project: str, url: str, statuses: list[str], **extra: Any) -> dict[str, Any]:
    answer = api.post(f"/api/v1/projects/{project}/webhooks", json={"url": url, "statuses": statuses, **extra})
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def submit(api: httpx.Client, project: str, **params: Any) -> str:
    answer = api.post("/api/v1/jobs", json={"project": project, "type": "sleep", "params": params})
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def deliveries(api: httpx.Client, project: str, hook: str) -> list[dict[str, Any]]:
    answer = api.get(f"/api/v1/projects/{project}/webhooks/{hook}/deliveries", params={"page_size": 200})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def all_delivered(api: httpx.Client, project: str, hook: str, count: int) -> bool:
    found = deliveries(api, project, hook)
    return len(found) == count and all(d["status"] == "delivered" for d in found)


def reported(got: list[Received]) -> list[tuple[str, str, str | None, str]]:
    """(job, action, from, to) of what a receiver got, sorted."""
    return sorted(
        (r.json["job"]["id"], r.json["event"]["action"], r.json["event"]["from"], r.json["event"]["to"]) for r in got
    )


def expected(system: System, jobs: list[str], statuses: set[str]) -> list[tuple[str, str, str | None, str]]:
    """(job, action, from, to) of every event of the jobs that brought one into one of `statuses`, sorted."""
    return sorted(
        (job, action, before, after)
        for job in jobs
        for before, after, action in system.events(job)
        if after in statuses and after != before
    )


def test_finished_and_failed_jobs_get_exactly_the_subscribed_deliveries_signed(
    hooked: System, api: httpx.Client, project: str, receivers: list[Receiver]
) -> None:
    ends, runs = receiver(receivers), receiver(receivers)
    secret = "a-secret-the-receiver-knows-0123"
    on_end = create(api, project, f"{ends.url}/ends", ["FINISHED", "ERROR"], secret=secret)
    on_run = create(api, project, f"{runs.url}/runs", ["RUNNING"])
    assert on_end["secret"] == secret and len(on_run["secret"]) >= 32

    finishing = [submit(api, project, steps=2, seconds=0.1) for _ in range(2)]
    failing = submit(api, project, steps=2, seconds=0.1, fail_at=1)
    jobs = [*finishing, failing]
    for job in finishing:
        hooked.wait_status(job, "FINISHED")
    hooked.wait_status(failing, "ERROR")

    want_end = expected(hooked, jobs, {"FINISHED", "ERROR"})
    want_run = expected(hooked, jobs, {"RUNNING"})
    assert [(e[0], e[3]) for e in want_end] == sorted([*((j, "FINISHED") for j in finishing), (failing, "ERROR")])
    wait_until(lambda: all_delivered(api, project, on_end["id"], len(want_end)), 30, "the end deliveries")
    wait_until(lambda: all_delivered(api, project, on_run["id"], len(want_run)), 30, "the running deliveries")
    assert reported(ends.got()) == want_end
    assert reported(runs.got()) == want_run

    for got, key in ((ends.got(), secret), (runs.got(), on_run["secret"])):
        assert len({r.delivery_id for r in got}) == len(got)  # each once
        for r in got:
            assert r.signed_with(key), "the signature verifies with the webhook's secret"
            assert not r.signed_with(on_end["secret"] if key != on_end["secret"] else on_run["secret"])
            assert r.headers["content-type"] == "application/json" and r.json["delivery_id"] == r.delivery_id
            assert r.json["event"]["at"].endswith("Z") and r.json["event"]["actor"]
    for r in ends.got():  # the job as the API shows it (and still does: it has not changed since)
        assert r.json["job"] == api.get(f"/api/v1/jobs/{r.json['job']['id']}").json()
    failed = next(r.json for r in ends.got() if r.json["event"]["to"] == "ERROR")
    assert failed["job"]["id"] == failing and failed["job"]["status"] == "ERROR" and failed["job"]["error"]
    assert failed["event"]["action"] == "fail"


def test_a_receiver_answering_500_is_retried_until_it_answers_200(
    hooked: System, api: httpx.Client, project: str, receivers: list[Receiver]
) -> None:
    flaky = receiver(receivers)
    flaky.answers.extend([500, 503])
    hook = create(api, project, flaky.url, ["FINISHED"])
    job = submit(api, project, steps=1, seconds=0.05)
    hooked.wait_status(job, "FINISHED")
    wait_until(lambda: all_delivered(api, project, hook["id"], 1), 30, "the delivery to get through")
    [delivery] = deliveries(api, project, hook["id"])
    assert (delivery["attempts"], delivery["last_status"], delivery["last_error"]) == (3, 200, None)
    got = flaky.got()
    assert [r.answered for r in got] == [500, 503, 200]
    assert len({r.body for r in got}) == 1 and {r.delivery_id for r in got} == {delivery["id"]}
    assert all(r.signed_with(hook["secret"]) for r in got)
    first_wait, second_wait = got[1].at - got[0].at, got[2].at - got[1].at
    assert first_wait >= BACKOFF_S and second_wait >= 2 * BACKOFF_S, (first_wait, second_wait)  # backing off


def test_a_receiver_that_is_down_gets_everything_once_back_even_across_a_scheduler_crash(
    hooked: System, api: httpx.Client, project: str, receivers: list[Receiver]
) -> None:
    down = receiver(receivers)
    down.stop()
    hook = create(api, project, f"{down.url}/back", ["FINISHED", "ERROR"])
    jobs = [submit(api, project, steps=1, seconds=0.05) for _ in range(4)]
    jobs.append(submit(api, project, steps=1, seconds=0.05, fail_at=0))
    for job in jobs:
        hooked.wait_status(job, "FINISHED", "ERROR")

    def every_one_tried() -> bool:
        found = deliveries(api, project, hook["id"])
        return len(found) == 5 and all(d["last_error"] and d["status"] == "pending" for d in found)

    wait_until(every_one_tried, 30, "every delivery to fail to connect")
    assert all(d["last_error"].startswith("could not connect") for d in deliveries(api, project, hook["id"]))

    scheduler = next(p for p in hooked.processes if p.name == "scheduler" and p.popen.poll() is None)
    scheduler.kill9()
    hooked.start_scheduler()
    down.start()
    wait_until(lambda: all_delivered(api, project, hook["id"], 5), 60, "every delivery once the receiver is back")
    assert reported(down.got()) == expected(hooked, jobs, {"FINISHED", "ERROR"})
    assert {r.delivery_id for r in down.got()} == {d["id"] for d in deliveries(api, project, hook["id"])}


def test_a_hanging_receiver_delays_neither_the_jobs_nor_other_webhooks(
    hooked: System, api: httpx.Client, project: str, receivers: list[Receiver]
) -> None:
    stuck, fine = receiver(receivers), receiver(receivers)
    stuck.hang_s = 5 * TIMEOUT_S
    hung = create(api, project, stuck.url, ["PENDING", "RUNNING", "FINISHED"])
    healthy = create(api, project, fine.url, ["FINISHED"])

    started = time.monotonic()
    jobs = [submit(api, project, steps=1, seconds=0.2) for _ in range(6)]
    for job in jobs:
        hooked.wait_status(job, "FINISHED", timeout=20)
    took = time.monotonic() - started
    # 18 hung deliveries, one at a time, at a timeout each: a loop waiting for them would take 18 s and more
    assert took < 10, f"the jobs took {took:.1f}s"

    wait_until(lambda: all_delivered(api, project, healthy["id"], 6), 20, "the healthy webhook's deliveries")
    for got in fine.got():
        late = got.at - _epoch(got.json["event"]["at"])
        assert late < 4, f"a delivery to the healthy receiver came {late:.1f}s after its event"
    assert reported(fine.got()) == expected(hooked, jobs, {"FINISHED"})

    def timed_out() -> list[dict[str, Any]]:
        return [d for d in deliveries(api, project, hung["id"]) if d["last_error"]]

    tried = wait_until(timed_out, 10, "an attempt to the hanging receiver to time out")
    assert all(d["last_error"].startswith(f"no answer within {TIMEOUT_S:g}s") for d in tried)
    assert all(d["status"] == "pending" for d in deliveries(api, project, hung["id"]))  # still being tried
    assert len(stuck.got()) < 18  # one at a time: most of them have not even been tried yet


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_the_python_client_manages_webhooks_and_reads_their_deliveries(
    hooked: System, api: httpx.Client, project: str, receivers: list[Receiver]
) -> None:
    target = receiver(receivers)
    url = str(api.base_url).rstrip("/")
    with Client(url, token=ADMIN["Authorization"].split()[1]) as client:
        made = client.webhooks.create(project, target.url, ["FINISHED"], secret="the-clients-own-secret-123")
        assert made.secret == "the-clients-own-secret-123" and made.statuses == [JobStatus.FINISHED]
        assert [(w.id, w.url) for w in client.webhooks.list(project)] == [(made.id, target.url)]
        with pytest.raises(Invalid):
            client.webhooks.create(project, "ftp://nowhere.example/", ["FINISHED"])
        job = client.submit("sleep", project=project, params={"steps": 1, "seconds": 0.05})
        job.wait(timeout=30)
        wait_until(
            lambda: client.webhooks.deliveries(project, made.id, status="delivered").total == 1, 30, "the delivery"
        )
        [delivery] = client.webhooks.deliveries(project, made.id).items
        assert delivery.job_id == job.id and delivery.event.to_status == "FINISHED" and delivery.last_status == 200
        assert [r.delivery_id for r in target.got()] == [delivery.id]

    async def the_async_way() -> None:
        async with AsyncClient(url, token=ADMIN["Authorization"].split()[1]) as client:
            other = await client.webhooks.create(project, target.url, ["ERROR"])
            assert {w.id for w in await client.webhooks.list(project)} == {made.id, other.id}
            assert (await client.webhooks.deliveries(project, other.id)).total == 0
            await client.webhooks.delete(project, other.id)
            await client.webhooks.delete(project, made.id)
            assert await client.webhooks.list(project) == []
            with pytest.raises(NotFound):
                await client.webhooks.delete(project, made.id)

    run(the_async_way())
