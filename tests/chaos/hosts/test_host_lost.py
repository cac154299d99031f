"""Several hosts, scenario 5: a whole host lost for good in the middle of steps - its worker's processes killed
and its network namespace deleted, so nothing of it ever answers again.

Two hosts, a 2-process worker on each; each round the victim (the hosts in turn) is destroyed while it runs steps
and a new host with a new worker takes its place. The steps it ran must be taken over within the lease plus one
scheduler pass of the moment it was lost, and finish on the other host; nothing is lost, stuck or run twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.chaos import fencing
from tests.chaos.harness import Checks, OverdueSampler, scale, wait_all
from tests.chaos.hosts.cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(900)]

ROUNDS = scale(1, 6)
IN_FLIGHT = scale(6, 12)
LEASE_S = 3.0
PARAMS = {"steps": 2, "seconds": 0.6}
SLACK_S = 1.0  # a loaded machine's lateness, on top of the lease and one scheduler pass


def test_a_host_lost_for_good_has_its_steps_taken_over_within_the_lease(
    cluster: Callable[..., Cluster], report: Callable[..., None]
) -> None:
    live = cluster(lease_s=LEASE_S, queue_lease_s=4.0)
    tick = live.settings.scheduler_tick_s
    slack = 2 * tick + 1.0
    hosts = [live.network.host() for _ in range(2)]
    names = [f"lost{i}-0@chaos" for i in range(2)]
    live.start_scheduler()
    for host, name in zip(hosts, names, strict=True):
        live.spawn_on(host, name, concurrency=2)
    live.wait_up(*names)
    project = live.project()
    jobs: list[str] = []
    losses: list[tuple[datetime, str, list[tuple[str, int]]]] = []  # when, which worker, the steps it ran

    def unfinished() -> int:
        return sum(n for status, n in live.statuses(jobs).items() if status != "FINISHED")

    began = time.monotonic()
    failure = ""
    with OverdueSampler(live, slack) as sampler:
        try:
            for round_ in range(ROUNDS):
                victim = round_ % 2
                name = names[victim]
                jobs.extend(live.submit(project, "record", PARAMS).id for _ in range(IN_FLIGHT - unfinished()))
                wait_all(
                    lambda n=name: bool(live.running_on(n, min_progress=10)),
                    30,
                    f"{name} to run a step",
                    lambda: str(live.statuses(jobs)),
                )
                hosts[victim].remove()  # every process in it killed, its namespace and link deleted
                losses.append((datetime.now(UTC), name, [(j, i) for j, i, _ in live.running_on(name)]))
                hosts[victim] = live.network.host()
                names[victim] = f"lost{victim}-{round_ + 1}@chaos"
                live.spawn_on(hosts[victim], names[victim], concurrency=2)
                live.wait_up(names[victim])
            wait_all(lambda: unfinished() == 0, 90, "every job to finish", lambda: str(live.statuses(jobs)))
        except AssertionError as exc:
            failure = str(exc)
    live.kill_all()
    statuses = live.statuses(jobs)
    verdict = live.verdict()
    invalid = live.invalid_paths(jobs)
    takeovers = {(t.job_id, t.step, t.worker): t for t in fencing.takeovers(live.svc.db.engine)}
    detected: list[float] = []  # from the loss to the scheduler's takeover
    recovered: list[float] = []  # from the loss to the step finished elsewhere
    missed = 0
    for lost_at, name, steps in losses:
        for (job_id, index), (status, worker, done) in zip(steps, live.step_state(steps), strict=True):
            takeover = takeovers.get((job_id, index, name))
            if takeover is None or status != "FINISHED" or done is None or worker == name:
                missed += 1
                continue
            detected.append((takeover.at - lost_at).total_seconds())
            recovered.append((done - lost_at).total_seconds())
    bound = LEASE_S + 2 * tick + SLACK_S
    figures: dict[str, Any] = {
        "rounds": ROUNDS,
        "jobs": len(jobs),
        "lost": len(jobs) - statuses.get("FINISHED", 0),
        "stuck": sampler.stuck,
        "double_recorded": verdict.double_recorded,
        "double_executed": verdict.double_executed,
        "recover_s": round(max(recovered), 2) if recovered else None,
        "takeover_max_s": round(max(detected), 2) if detected else None,
        "takeover_bound_s": round(bound, 2),
        "steps_interrupted": sum(len(s) for _, _, s in losses),
        "not_taken_over": missed,
        "double_dispatched": verdict.double_dispatched,
        "invalid_paths": len(invalid),
        "wall_s": round(time.monotonic() - began, 1),
    }
    checks = (
        Checks(failure)
        .add(figures["lost"] == 0, statuses)
        .none_stuck(sampler)
        .add(figures["steps_interrupted"] >= ROUNDS and missed == 0, losses)
        .add(all(d <= bound for d in detected), lambda: f"taken over after {max(detected):.2f} s (bound {bound:.2f} s)")
        .nothing_twice(verdict)
        .valid_paths(invalid)
    )
    report(
        "several hosts: host lost for good",
        **figures,
        passed=checks.passed,
        error=failure.splitlines()[0] if failure else None,
        notes=(
            f"{ROUNDS} rounds: one of two hosts destroyed mid-step (its processes SIGKILLed, its network namespace "
            f"deleted) and replaced by a new host; {IN_FLIGHT} jobs ({PARAMS['steps']} steps x {PARAMS['seconds']} s) "
            f"in flight; lease {LEASE_S:g} s. takeover max s: longest time from a loss to the scheduler's retry of "
            f"a step the host ran (bound: the lease + one scheduler pass + {SLACK_S:g} s); recover s: to that step "
            "finished on the other host"
        ),
    )
    checks.assert_all()
