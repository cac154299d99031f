"""The scheduler's webhook parts on a real database and a real local receiver, without a worker: the tailer
(events to deliveries: once each, late commits and reused ids caught, two tailers at once) and the sender
(signed POSTs, retries until it gives up, the address guard at send time, claims shared by two senders).

Jobs are submitted and operated through the real `Operations`; nothing here runs a step."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, func, select, text

from jobctl.api.waiting import waiting_for
from jobctl.api.webhook_schemas import job_renderer
from jobctl.scheduler.addresses import public_addresses
from jobctl.scheduler.migrate import upgrade
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts, models, transitions
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.scheduler.store import webhooks as store
from jobctl.scheduler.store.common import utcnow
from jobctl.scheduler.webhook_send import Resolve, Sender
from jobctl.scheduler.webhook_tail import Tailer
from jobctl.states import Action
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.conftest import fresh_database
from tests.integration.system import wait_until
from tests.webhook_receiver import Receiver


@pytest.fixture(scope="module")
def svc(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Services on a database of this module's own: the tailer's cursor is one per database."""
    url, drop = fresh_database(backend, tmp_path_factory)
    tuned = settings.model_copy(
        update={"database_url": url, "webhook_backoff_s": 0.1, "webhook_timeout_s": 1.0, "webhook_senders": 4}
    )
    built = build(tuned)
    try:
        yield built
    finally:
        built.close()
        drop()


@pytest.fixture(autouse=True)
def no_webhooks_left(svc: Services) -> Iterator[None]:
    """Each test starts without webhooks: none of another test's deliveries is due in it."""
    yield
    with svc.db.write() as s:
        s.execute(delete(models.WebhookDelivery))
        s.execute(delete(models.Webhook))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.stop()


def tailer(svc: Services) -> Tailer:
    return Tailer(svc.db, job_renderer(svc))  # as the scheduler process renders jobs


def tail(svc: Services) -> None:
    """Pass until every event is read."""
    one = tailer(svc)
    while one.run_pass():
        pass


def project(svc: Services) -> str:
    name = f"p{uuid.uuid4().hex[:8]}"
    with svc.db.write() as s:
        accounts.create_project(s, name, None)
    return name


def webhook(
    svc: Services, project: str, url: str, statuses: list[str], secret: str = "a-secret-of-enough-length"
) -> str:
    webhook_id = uuid.uuid4().hex
    with svc.db.write() as s:
        store.create_webhook(
            s,
            webhook_id=webhook_id,
            project=project,
            url=url,
            statuses=statuses,
            secret=secret,
            created_by="test",
            now=utcnow(),
        )
    return webhook_id


def submit(svc: Services, project: str) -> str:
    params, steps = svc.registry.get("sleep").prepare({"steps": 1, "seconds": 1})
    job = svc.ops.submit(
        project=project, job_type="sleep", steps=steps, params=params, priority=3, submitter="test", target=None
    )
    return job.id


def deliveries(svc: Services, webhook_id: str) -> list[store.DeliveryRecord]:
    with svc.db.read() as s:
        return list(reversed(store.list_deliveries(s, webhook_id, limit=1000)[0]))


def events_of(svc: Services, webhook_id: str) -> list[tuple[str, str, str | None, str]]:
    """(job, action, from, to) of the webhook's deliveries, oldest first."""
    return [(d.job_id, d.action, d.from_status, d.to_status) for d in deliveries(svc, webhook_id)]


# -- the tailer ------------------------------------------------------------------------------------------------


def test_matching_events_become_one_delivery_each_with_the_job_as_the_api_shows_it(svc: Services) -> None:
    p, other = project(svc), project(svc)
    tail(svc)
    early = submit(svc, p)  # before the webhook: not delivered
    hook = webhook(svc, p, "http://127.0.0.1:9/", ["PENDING", "PAUSED"])
    job = submit(svc, p)
    submit(svc, other)  # another project's
    svc.ops.operate(job, Action.PAUSE, "alice")
    svc.ops.operate(job, Action.DISCARD, "alice")  # not subscribed
    tail(svc)
    tail(svc)
    assert events_of(svc, hook) == [(job, "submit", None, "PENDING"), (job, "pause", "PENDING", "PAUSED")]
    assert early not in {d.job_id for d in deliveries(svc, hook)}
    first = deliveries(svc, hook)[0]
    with svc.db.read() as s:
        body = json.loads(s.scalar(select(models.WebhookDelivery.body).where(models.WebhookDelivery.id == first.id)))
    assert body["delivery_id"] == first.id
    assert body["event"]["action"] == "submit" and body["event"]["from"] is None and body["event"]["to"] == "PENDING"
    assert body["event"]["actor"] == "test" and body["event"]["at"].endswith("Z")
    assert body["job"]["id"] == job and body["job"]["project"] == p and "steps" in body["job"]
    assert body["job"]["status"] == "DISCARDED"  # as it was when the delivery was made, after both events


def test_a_pending_job_in_a_delivery_says_why_it_waits_as_the_api_does(svc: Services) -> None:
    p = project(svc)
    hook = webhook(svc, p, "http://127.0.0.1:9/", ["PENDING"])
    job = submit(svc, p)  # no worker runs here: it waits
    tail(svc)
    [made] = deliveries(svc, hook)
    with svc.db.read() as s:
        body = json.loads(s.scalar(select(models.WebhookDelivery.body).where(models.WebhookDelivery.id == made.id)))
        record = jobs_store.get_job(s, job)
        reason = waiting_for(svc, s, [record])[job]
    assert body["job"]["status"] == "PENDING" and body["job"]["waiting_for"] == reason and reason


def test_an_event_committed_after_a_later_one_is_still_delivered(svc: Services, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite commits in id order: one writer at a time")
    p = project(svc)
    hook = webhook(svc, p, "http://127.0.0.1:9/", ["PAUSED"])
    first, second = submit(svc, p), submit(svc, p)
    tail(svc)
    with svc.db.write() as s:
        transitions.transition(s, first, Action.PAUSE, "slow")  # takes the lower event id, commits last
        svc.ops.operate(second, Action.PAUSE, "quick")
        tail(svc)
        assert [d[0] for d in events_of(svc, hook)] == [second]
    tail(svc)
    assert sorted(d[0] for d in events_of(svc, hook)) == sorted([first, second])


def test_the_ids_of_deleted_events_given_to_new_ones_are_delivered(svc: Services) -> None:
    """SQLite gives the next event the id after the highest left: deleting the newest job reuses its ids."""
    p = project(svc)
    hook = webhook(svc, p, "http://127.0.0.1:9/", ["PENDING", "DISCARDED"])
    gone = submit(svc, p)
    svc.ops.operate(gone, Action.DISCARD, "test")
    tail(svc)
    svc.ops.operate(gone, Action.DELETE, "test")  # its events go with it
    fresh = submit(svc, p)
    svc.ops.operate(fresh, Action.DISCARD, "test")
    tail(svc)
    assert events_of(svc, hook) == [
        (gone, "submit", None, "PENDING"),
        (gone, "discard", "PENDING", "DISCARDED"),
        (fresh, "submit", None, "PENDING"),
        (fresh, "discard", "PENDING", "DISCARDED"),
    ]


def test_two_tailers_at_once_create_each_delivery_once(svc: Services) -> None:
    p = project(svc)
    hook = webhook(svc, p, "http://127.0.0.1:9/", ["PENDING"])
    tail(svc)
    done = threading.Event()
    errors: list[BaseException] = []

    def keep_tailing() -> None:
        one = tailer(svc)
        try:
            while not done.is_set():
                one.run_pass()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=keep_tailing) for _ in range(2)]
    for thread in threads:
        thread.start()
    jobs = [submit(svc, p) for _ in range(40)]
    done.set()
    for thread in threads:
        thread.join(30)
    tail(svc)
    assert not errors, errors
    assert sorted(d[0] for d in events_of(svc, hook)) == sorted(jobs)


# -- the sender ------------------------------------------------------------------------------------------------


@pytest.fixture
def senders(svc: Services) -> Iterator[Callable[..., Sender]]:
    made: list[Sender] = []

    def make(resolve: Resolve | None = None, **settings: Any) -> Sender:
        sender = Sender(svc.db, svc.settings.model_copy(update=settings), resolve=resolve)
        sender.start()
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.stop()


def drive(sender: Sender, until: Callable[[], object], timeout: float = 15) -> None:
    """Claim due deliveries until `until()` is true."""
    wait_until(lambda: sender.claim_due() is not None and until(), timeout, "the sender to get there")


def test_a_delivery_is_posted_signed_and_recorded(
    svc: Services, receiver: Receiver, senders: Callable[..., Sender]
) -> None:
    p = project(svc)
    secret = "the-receivers-own-secret"
    hook = webhook(svc, p, f"{receiver.url}/in", ["PENDING"], secret)
    job = submit(svc, p)
    tail(svc)
    drive(senders(), lambda: all(d.status == "delivered" for d in deliveries(svc, hook)))
    [got] = receiver.got()
    [made] = deliveries(svc, hook)
    assert got.path == "/in" and got.signed_with(secret) and not got.signed_with("another-secret-entirely")
    assert got.headers["content-type"] == "application/json"
    assert got.delivery_id == made.id == got.json["delivery_id"]
    assert got.json["job"]["id"] == job and got.json["event"]["to"] == "PENDING"
    assert (made.attempts, made.last_status, made.last_error, made.next_attempt_at) == (1, 200, None, None)
    assert made.delivered_at is not None


def test_failed_attempts_are_retried_until_the_delivery_gives_up(
    svc: Services, receiver: Receiver, senders: Callable[..., Sender]
) -> None:
    receiver.default = 500
    p = project(svc)
    hook = webhook(svc, p, receiver.url, ["PENDING"])
    submit(svc, p)
    tail(svc)
    sender = senders(webhook_backoff_s=0.05, webhook_give_up_s=1.0)
    drive(sender, lambda: all(d.status == "failed" for d in deliveries(svc, hook)))
    [failed] = deliveries(svc, hook)
    got = receiver.got()
    assert failed.attempts == len(got) >= 3
    assert len({r.body for r in got}) == 1 and {r.delivery_id for r in got} == {failed.id}  # the same bytes each time
    assert (failed.last_status, failed.last_error, failed.next_attempt_at) == (500, "answered HTTP 500", None)
    assert got[-1].at - failed.event_at.timestamp() <= 1.5  # none after it gave up


def test_a_receiver_that_is_down_is_retried_and_gets_it_when_back(
    svc: Services, receiver: Receiver, senders: Callable[..., Sender]
) -> None:
    receiver.stop()
    p = project(svc)
    hook = webhook(svc, p, receiver.url, ["PENDING"])
    submit(svc, p)
    tail(svc)
    sender = senders(webhook_backoff_s=0.1)
    drive(sender, lambda: deliveries(svc, hook)[0].attempts >= 2)
    pending = deliveries(svc, hook)[0]
    assert pending.status == "pending" and pending.last_status is None
    assert pending.last_error and pending.last_error.startswith("could not connect")
    receiver.start()
    drive(sender, lambda: deliveries(svc, hook)[0].status == "delivered")
    assert len(receiver.got()) == 1


def test_the_guard_refuses_a_private_address_at_send_time(
    svc: Services, receiver: Receiver, senders: Callable[..., Sender]
) -> None:
    """A webhook made while its host was public, now resolving to a private address, gets nothing."""
    p = project(svc)
    hook = webhook(svc, p, receiver.url, ["PENDING"])
    submit(svc, p)
    tail(svc)
    sender = senders(resolve=public_addresses)
    drive(sender, lambda: deliveries(svc, hook)[0].last_error is not None)
    refused = deliveries(svc, hook)[0]
    assert refused.status == "pending" and refused.last_error is not None
    assert refused.last_error.startswith("refused:") and "not a public address" in refused.last_error
    assert receiver.got() == []


def test_a_guarded_post_goes_to_the_address_checked_with_the_name_in_host(
    svc: Services, receiver: Receiver, senders: Callable[..., Sender]
) -> None:
    checked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        checked.append((host, port))
        return ["127.0.0.1"]  # what the (here: fixed) resolution found and the guard passed

    p = project(svc)
    hook = webhook(svc, p, f"http://receiver.jobctl.invalid:{receiver.port}/pinned", ["PENDING"])
    submit(svc, p)
    tail(svc)
    drive(senders(resolve=resolve), lambda: deliveries(svc, hook)[0].status == "delivered")
    [got] = receiver.got()
    assert got.path == "/pinned" and got.headers["host"] == f"receiver.jobctl.invalid:{receiver.port}"
    assert checked == [("receiver.jobctl.invalid", receiver.port)]


def test_two_senders_send_each_attempt_once(svc: Services, receiver: Receiver, senders: Callable[..., Sender]) -> None:
    p = project(svc)
    hooks = [webhook(svc, p, f"{receiver.url}/{n}", ["PENDING"]) for n in range(3)]
    for _ in range(10):
        submit(svc, p)
    tail(svc)
    one, two = senders(), senders()

    def both_claim_until_all_delivered() -> bool:
        one.claim_due()
        two.claim_due()
        return all(d.status == "delivered" for h in hooks for d in deliveries(svc, h))

    wait_until(both_claim_until_all_delivered, 20, "every delivery to be delivered", interval=0.005)
    assert all(d.status == "delivered" and d.attempts == 1 for h in hooks for d in deliveries(svc, h))
    ids = [r.delivery_id for r in receiver.got()]
    assert len(ids) == len(set(ids)) == 30
    with svc.db.read() as s:
        leased = s.scalar(select(func.count()).where(models.WebhookDelivery.lease.is_not(None)))
    assert leased == 0


# -- the README's receiver -------------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_receiver_takes_real_deliveries_and_refuses_forged_ones(
    svc: Services, senders: Callable[..., Sender]
) -> None:
    section = README.read_text().split("## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    example: dict[str, Any] = {"__name__": "readme_receiver"}
    exec(compile(code, "README.md (Webhooks)", "exec"), example)
    example["SECRET"] = secret = "the-secret-of-the-readme-webhook"
    server = HTTPServer(("127.0.0.1", 0), example["Receiver"])
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        p = project(svc)
        good = webhook(svc, p, url, ["PENDING"], secret)
        forged = webhook(svc, p, url, ["PENDING"], "not-the-secret-the-receiver-has")
        submit(svc, p)
        tail(svc)
        sender = senders()
        drive(sender, lambda: deliveries(svc, good)[0].status == "delivered" and deliveries(svc, forged)[0].last_status)
        [delivered], [refused] = deliveries(svc, good), deliveries(svc, forged)
        assert delivered.last_status == 204 and example["seen"] == {delivered.id}
        assert (refused.status, refused.last_status, refused.last_error) == ("pending", 401, "answered HTTP 401")
    finally:
        server.shutdown()
        server.server_close()


def test_an_upgraded_database_starts_the_cursor_after_its_events(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No webhook exists before revision 0006: the events before it can match none, and are not read again."""
    url, drop = fresh_database(backend, tmp_path_factory, revision="0005")
    engine = create_engine(url)
    try:
        now = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO projects (name, created_at) VALUES ('old', :t)"), {"t": now})
            conn.execute(
                text(
                    "INSERT INTO jobs (id, project_id, type, params, priority, status, submitter, attempt, created_at,"
                    " duration_s, waiting_s, exclusive, updated_at) SELECT :j, id, 'sleep', '{}', 3, 'PENDING', 'x', 1,"
                    " :t, 0, 0, false, :t FROM projects"
                ),
                {"j": "j" * 32, "t": now},
            )
            for _ in range(3):
                conn.execute(
                    text(
                        "INSERT INTO events (job_id, at, actor, action, to_status)"
                        " VALUES (:j, :t, 'x', 'submit', 'PENDING')"
                    ),
                    {"j": "j" * 32, "t": now},
                )
            newest = conn.scalar(text("SELECT max(id) FROM events"))
        upgrade(url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT event_id, top_job, version FROM webhook_cursor")).one()
        assert tuple(row) == (newest, "j" * 32, 0)
    finally:
        engine.dispose()
        drop()
