"""Self-fencing on one host (docs/reliability.md, "Several hosts"): a worker whose link to the database is cut
stops its running step itself, through the stop's layers, before the scheduler may take it over; the step then
finishes on the other worker, once; the cut worker's late writes are refused; after the link heals it takes new
work.

Each worker reaches PostgreSQL through a relay of its own (`tests.chaos.relay`), and the test blackholes the relay
of the worker that runs the step: its connections hang, as in a partition, while Redis still reaches it. The
several-hosts scenarios (`tests/chaos/hosts/`) do the same with network namespaces and packet filters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from jobctl.scheduler.store import models
from jobctl.workers.selffence import latest_stop_s
from tests.chaos import fencing
from tests.chaos.harness import Chaos, wait_all
from tests.chaos.relay import Relay
from tests.integration.system import Process, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SQLITE_REASON = "SQLite is a file the worker opens itself: there is no link to the database to cut"
LEASE_S = 3.0
SLACK_S = 0.5  # a loaded machine's lateness in delivering the stop signal, on top of the rule's own terms


def _step_worker(live: Chaos, job_id: str) -> str | None:
    with live.svc.db.read() as s:
        return s.scalar(sa.select(models.Step.worker).where(models.Step.job_id == job_id, models.Step.index == 0))


@pytest.fixture
def relays() -> Iterator[list[Relay]]:
    made: list[Relay] = []
    yield made
    for relay in made:
        relay.stop()


def test_a_worker_cut_off_from_the_database_stops_its_step_before_it_is_taken_over(
    chaos: Callable[..., Chaos], backend: str, report: Callable[..., None], relays: list[Relay]
) -> None:
    if backend != "postgresql":
        pytest.skip(SQLITE_REASON)
    live = chaos(lease_s=LEASE_S, queue_lease_s=4.0, log_format="json")
    url = sa.make_url(live.settings.database_url)
    workers: dict[str, tuple[Process, Relay]] = {}
    live.start_scheduler()
    for name in ("w1@fence", "w2@fence"):
        relay = Relay("127.0.0.1", url.host or "127.0.0.1", url.port or 5432).start()
        relays.append(relay)
        via = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        settings = live.settings.model_copy(update={"database_url": via})
        proc = Process(name.split("@")[0], ["worker", "--concurrency", "1", "--hostname", name], settings, live.log_dir)
        live.processes.append(proc)
        workers[name] = (proc, relay)
    live.wait_up(*workers)
    project = live.project()
    began = time.monotonic()
    job = live.submit(project, "record", {"steps": 1, "seconds": 2.0})
    live.wait_step_running(job.id, 0, min_progress=10, timeout=20)
    cut = _step_worker(live, job.id)
    assert cut in workers
    other = next(name for name in workers if name != cut)
    cut_proc, cut_relay = workers[cut]

    cut_relay.blackhole()
    cut_at = time.monotonic()
    failure = ""
    fences: list[fencing.SelfFence] = []
    try:
        wait_all(
            lambda: live.job(job.id).status.value == "FINISHED",
            30,
            "the step to finish on the other worker",
            lambda: f"{live.job(job.id)}\n{live.logs()}",
        )
        recover_s = time.monotonic() - cut_at
        fences = wait_until(lambda: fencing.self_fences(cut_proc.log_path), 10, "the self-fence in the worker's log")
        cut_relay.heal()
        healed = datetime.now(UTC)

        # The healed worker takes new work (and the held writes of its stopped attempt, delivered now, are refused).
        more = [live.submit(project, "record", {"steps": 1, "seconds": 0.3}).id for _ in range(6)]
        wait_all(
            lambda: any(_step_worker(live, m) == cut for m in more if live.job(m).status.value == "FINISHED"),
            30,
            f"{cut} to run a step after the heal",
            lambda: f"{[(_step_worker(live, m), live.job(m).status.value) for m in more]}\n{live.logs()}",
        )
        wait_all(
            lambda: live.statuses(more).get("FINISHED", 0) == len(more),
            30,
            "the later jobs to finish",
            lambda: str(live.statuses(more)),
        )
    except AssertionError as exc:
        failure = str(exc)
        recover_s = -1.0
        healed = datetime.now(UTC)
    live.kill_all()
    verdict = live.verdict()
    margins, alone = fencing.margins(live.svc.db.engine, fences)
    final = live.job(job.id)
    deadline, latest = live.settings.self_fence_deadline_s, latest_stop_s(live.settings)
    self_fence_s = max((f.stopped_after_s for f in fences), default=None)
    report(
        "self-fence on one host",
        rounds=1,
        jobs=1,
        lost=0 if final.status.value == "FINISHED" else 1,
        stuck=0,
        double_recorded=verdict.double_recorded,
        double_executed=verdict.double_executed,
        self_fence_s=None if self_fence_s is None else round(self_fence_s, 3),
        recover_s=round(recover_s, 2),
        deadline_s=deadline,
        latest_stop_s=round(latest, 2),
        takeover_margin_s=round(min(m.margin_s for m in margins), 3) if margins else None,
        wall_s=round(time.monotonic() - began, 1),
        passed=not failure and len(margins) == 1 and all(m.margin_s > 0 for m in margins),
        notes=f"lease {LEASE_S:g} s; the database link of the worker running a 2 s step blackholed by a relay until "
        "the step finished on the other worker; self fence s: from the last renewal to the code gone, on the "
        "worker's clock; recover s: from the cut to the step finished elsewhere",
    )
    assert not failure, failure
    assert len(fences) == 1 and not alone, (fences, alone)
    fence = fences[0]
    assert not fence.killed  # `record` sleeps in Python: the stop signal interrupts it
    assert deadline <= fence.stopped_after_s <= latest + SLACK_S, fence
    assert margins[0].margin_s > 0, f"taken over {margins[0].margin_s:.3f} s before its code was gone"
    assert final.steps[0].worker == other and final.steps[0].attempt == 2
    assert fence.at < healed
    assert (verdict.double_recorded, verdict.double_executed, verdict.double_dispatched) == (0, 0, 0), verdict
