"""Several hosts, scenario 1: a worker host partitioned from everything (all its packets dropped) for twice the
lease, in the middle of steps, round after round with jobs in flight.

Two hosts (network namespaces), a 2-process worker on each; the scheduler in the root namespace. Each round the
victim (the hosts in turn) is cut off while it runs steps. Its running attempts must stop within the self-fence
deadline, measured on its own clock and logged, and before the scheduler takes them over; every job finishes
(the interrupted steps on the other host); no step is recorded twice; once healed, the victim takes new work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from jobctl.workers.selffence import latest_stop_s
from tests.chaos import fencing
from tests.chaos.harness import Checks, OverdueSampler, scale, wait_all
from tests.chaos.hosts.cluster import Cluster
from tests.chaos.hosts.servers import IDLE_IN_TRANSACTION_S

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(900)]

ROUNDS = scale(1, 10)
IN_FLIGHT = scale(6, 12)
LEASE_S = 3.0
PARAMS = {"steps": 2, "seconds": 0.6}
SLACK_S = 0.5  # a loaded machine's lateness in delivering the stop, on top of the rule's own terms


def test_a_partitioned_host_fences_itself_and_its_steps_finish_on_the_other(
    cluster: Callable[..., Cluster], report: Callable[..., None]
) -> None:
    live = cluster(lease_s=LEASE_S, queue_lease_s=4.0)
    # stuck: RUNNING past the lease + a scheduler pass + the time a cut-off client's open transaction may hold a
    # step's row (the server ends it after IDLE_IN_TRANSACTION_S)
    slack = 2 * live.settings.scheduler_tick_s + IDLE_IN_TRANSACTION_S + 1.0
    hosts = [live.network.host() for _ in range(2)]
    names = [f"host{i}@chaos" for i in range(2)]
    live.start_scheduler()
    for host, name in zip(hosts, names, strict=True):
        live.spawn_on(host, name, concurrency=2)
    live.wait_up(*names)
    project = live.project()
    jobs: list[str] = []
    rounds: list[dict[str, Any]] = []

    def unfinished() -> int:
        return sum(n for status, n in live.statuses(jobs).items() if status != "FINISHED")

    def top_up() -> bool:
        """Keep at least half the jobs in flight (there must be work for a healed host to take)."""
        if (left := unfinished()) < IN_FLIGHT // 2:
            jobs.extend(live.submit(project, "record", PARAMS).id for _ in range(IN_FLIGHT - left))
        return True

    began = time.monotonic()
    failure = ""
    with OverdueSampler(live, slack) as sampler:
        try:
            for round_ in range(ROUNDS):
                victim = round_ % 2
                host, name = hosts[victim], names[victim]
                jobs.extend(live.submit(project, "record", PARAMS).id for _ in range(IN_FLIGHT - unfinished()))
                wait_all(
                    lambda n=name: bool(live.running_on(n, min_progress=10)),
                    30,
                    f"{name} to run a step",
                    lambda: str(live.statuses(jobs)),
                )
                host.partition()
                cut_at, cut_wall = time.monotonic(), datetime.now(UTC)
                interrupted = [(j, i) for j, i, _ in live.running_on(name)]
                time.sleep(2 * LEASE_S)  # the partition lasts twice the lease (this is the fault, not a wait)
                host.heal()
                healed = datetime.now(UTC)
                wait_all(
                    lambda n=name, h=healed: top_up() and live.finished_on_since(n, h) > 0,
                    45,
                    f"{name} to take new work after the heal",
                    lambda: f"{live.statuses(jobs)}\n{live.logs()}",
                )
                rounds.append({"cut": cut_wall, "cut_at": cut_at, "victim": name, "interrupted": interrupted})
            wait_all(lambda: unfinished() == 0, 90, "every job to finish", lambda: str(live.statuses(jobs)))
        except AssertionError as exc:
            failure = f"{exc}"
    live.kill_all()
    statuses = live.statuses(jobs)
    verdict = live.verdict()
    invalid = live.invalid_paths(jobs)
    fences = [f for name in names for f in live.self_fences(name)]
    ran = fencing.ran(fences)  # the attempts whose code ran (others were stopped before it)
    unfenced = fencing.unfenced_takeovers(live.svc.db.engine, fences, set(names))
    margins, alone = fencing.margins(live.svc.db.engine, fences)
    takeovers = fencing.takeovers(live.svc.db.engine)
    recoveries = []
    for r in rounds:
        for status, _, done in live.step_state(r["interrupted"]):
            if status == "FINISHED" and done is not None:
                recoveries.append((done - r["cut"]).total_seconds())
    latest = latest_stop_s(live.settings)
    figures: dict[str, Any] = {
        "rounds": ROUNDS,
        "jobs": len(jobs),
        "lost": len(jobs) - statuses.get("FINISHED", 0),
        "stuck": sampler.stuck,
        "double_recorded": verdict.double_recorded,
        "double_executed": verdict.double_executed,
        "self_fence_s": round(max(f.stopped_after_s for f in ran), 3) if ran else None,
        "recover_s": round(max(recoveries), 2) if recoveries else None,
        "deadline_s": live.settings.self_fence_deadline_s,
        "latest_stop_s": round(latest, 2),
        "self_fences": len(ran),
        "fenced_before_start": len(fences) - len(ran),
        "killed": sum(f.killed for f in fences),
        "takeovers": len(takeovers),
        "takeover_margin_min_s": round(min(m.margin_s for m in margins), 3) if margins else None,
        "fenced_not_taken_over": len(alone),
        "steps_interrupted": sum(len(r["interrupted"]) for r in rounds),
        "unfenced_takeovers": len(unfenced),
        "double_dispatched": verdict.double_dispatched,
        "completed_twice_in_code": verdict.completed_twice_in_code,
        "invalid_paths": len(invalid),
        "wall_s": round(time.monotonic() - began, 1),
    }
    checks = (
        Checks(failure)
        .add(figures["lost"] == 0, statuses)
        .none_stuck(sampler)
        .add(len(ran) >= ROUNDS, "every partition caught running steps: each must have fenced itself")
        .add(all(f.stopped_after_s <= latest + SLACK_S for f in ran), fences)
        .add(all(m.margin_s > 0 for m in margins), margins)
        .add(not unfenced, f"attempts taken over while their code ran, not self-fenced: {unfenced}")
        .nothing_twice(verdict)
        .valid_paths(invalid)
    )
    report(
        "several hosts: partition",
        **figures,
        passed=checks.passed,
        error=failure.splitlines()[0] if failure else None,
        notes=(
            f"{ROUNDS} rounds: one of two hosts (network namespaces, 2-process workers) cut off from everything for "
            f"2 x the lease ({LEASE_S:g} s) while it runs steps, {IN_FLIGHT} jobs ({PARAMS['steps']} steps x "
            f"{PARAMS['seconds']} s) in flight. self fence s: longest time from an attempt's last lease renewal to "
            "its code gone, on the partitioned worker's clock (its log); takeover margin: the scheduler's takeover "
            "minus that moment; recover s: longest time from a cut to an interrupted step finished on the other host"
        ),
    )
    checks.assert_all()
