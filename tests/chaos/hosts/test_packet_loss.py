"""Several hosts, scenario 4: packet loss - 5% of a worker host's packets dropped at random, each direction, for
a minute under load.

Two hosts, a 2-process worker on each; the jobs in flight are kept topped up while one host loses packets. TCP
retransmits what is lost, so the host goes on working, more slowly; a renewal held up past the self-fence deadline
stops a step (safely: it is taken over) and is counted. Nothing may be lost, stuck or run twice.

Full scale only (`make chaos`): the quick test run covers self-fencing with scenarios 1 and 5.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.chaos import fencing
from tests.chaos.harness import FULL, Checks, OverdueSampler, scale, wait_all
from tests.chaos.hosts.cluster import Cluster
from tests.chaos.hosts.servers import IDLE_IN_TRANSACTION_S

pytestmark = [
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not FULL, reason="full scale only (make chaos): quick runs cover scenarios 1 and 5"),
]

LOSS_PERCENT = 5.0
DURATION_S = scale(15.0, 60.0)
IN_FLIGHT = 10
LEASE_S = 3.0
PARAMS = {"steps": 2, "seconds": 0.3}


def test_packet_loss_on_a_host_loses_nothing(cluster: Callable[..., Cluster], report: Callable[..., None]) -> None:
    live = cluster(lease_s=LEASE_S, queue_lease_s=4.0)
    slack = 2 * live.settings.scheduler_tick_s + IDLE_IN_TRANSACTION_S + 1.0
    hosts = [live.network.host() for _ in range(2)]
    names = [f"lossy{i}@chaos" for i in range(2)]
    live.start_scheduler()
    for host, name in zip(hosts, names, strict=True):
        live.spawn_on(host, name, concurrency=2)
    live.wait_up(*names)
    project = live.project()
    jobs: list[str] = []

    def unfinished() -> int:
        return sum(n for status, n in live.statuses(jobs).items() if status != "FINISHED")

    began = time.monotonic()
    failure = ""
    recover_s: float | None = None
    per_host: dict[str, int] = {}
    with OverdueSampler(live, slack) as sampler:
        try:
            jobs.extend(live.submit(project, "record", PARAMS).id for _ in range(IN_FLIGHT))
            wait_all(lambda: bool(live.running_on(names[0])), 30, f"{names[0]} to run a step", lambda: live.logs())
            hosts[0].loss(LOSS_PERCENT)
            lossy_from = datetime.now(UTC)
            until = time.monotonic() + DURATION_S
            while time.monotonic() < until:  # the load: jobs kept in flight for the whole loss
                jobs.extend(live.submit(project, "record", PARAMS).id for _ in range(IN_FLIGHT - unfinished()))
                time.sleep(0.2)
            hosts[0].heal()
            per_host = {name: live.finished_on_since(name, lossy_from) for name in names}
            healed = time.monotonic()
            wait_all(lambda: unfinished() == 0, 90, "every job to finish", lambda: str(live.statuses(jobs)))
            recover_s = time.monotonic() - healed
        except AssertionError as exc:
            failure = str(exc)
    live.kill_all()
    statuses = live.statuses(jobs)
    verdict = live.verdict()
    invalid = live.invalid_paths(jobs)
    fences = [f for name in names for f in live.self_fences(name)]
    ran = fencing.ran(fences)  # the attempts whose code ran (others were stopped before it)
    unfenced = fencing.unfenced_takeovers(live.svc.db.engine, fences, set(names))
    margins, _ = fencing.margins(live.svc.db.engine, fences)
    figures: dict[str, Any] = {
        "rounds": 1,
        "jobs": len(jobs),
        "lost": len(jobs) - statuses.get("FINISHED", 0),
        "stuck": sampler.stuck,
        "double_recorded": verdict.double_recorded,
        "double_executed": verdict.double_executed,
        "self_fence_s": round(max(f.stopped_after_s for f in ran), 3) if ran else None,
        "recover_s": None if recover_s is None else round(recover_s, 2),
        "loss_s": DURATION_S,
        "steps_finished_during_loss": ", ".join(f"{n}: {c}" for n, c in per_host.items()),
        "self_fences": len(ran),
        "fenced_before_start": len(fences) - len(ran),
        "takeover_margin_min_s": round(min(m.margin_s for m in margins), 3) if margins else None,
        "takeovers": len(fencing.takeovers(live.svc.db.engine)),
        "unfenced_takeovers": len(unfenced),
        "double_dispatched": verdict.double_dispatched,
        "invalid_paths": len(invalid),
        "wall_s": round(time.monotonic() - began, 1),
    }
    checks = (
        Checks(failure)
        .add(figures["lost"] == 0, statuses)
        .none_stuck(sampler)
        .add(all(m.margin_s > 0 for m in margins), margins)
        .add(not unfenced, f"attempts taken over while their code ran, not self-fenced: {unfenced}")
        .nothing_twice(verdict)
        .valid_paths(invalid)
    )
    report(
        "several hosts: packet loss",
        **figures,
        passed=checks.passed,
        error=failure.splitlines()[0] if failure else None,
        notes=(
            f"{LOSS_PERCENT:g}% of one host's packets dropped at random in each direction (nftables in its network "
            f"namespace) for {DURATION_S:g} s while {IN_FLIGHT} jobs ({PARAMS['steps']} steps x {PARAMS['seconds']} s) "
            f"are kept in flight on two 2-process workers; lease {LEASE_S:g} s (self-fence deadline "
            f"{live.settings.self_fence_deadline_s:g} s). steps finished during loss: per host (the first is the "
            "lossy one); a self-fence is a renewal held up by retransmissions past the deadline; recover s: from "
            "the end of the loss to every job FINISHED"
        ),
    )
    checks.assert_all()
