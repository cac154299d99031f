"""Several hosts, scenario 2: asymmetric partitions - a worker host that reaches Redis but not PostgreSQL, then
one that reaches PostgreSQL but not Redis (only the packets of that server's port are dropped), for twice the
lease, while it runs steps.

The same guarantees as a full partition (every job reaches its expected state, no step recorded twice, nothing
stuck), and the operations on the host's running steps still land: right after the cut, one of its jobs is
paused, one discarded and one auto-discarded (its `record` target changed). Each stop must reach the step's code
- by the stop command where Redis still reaches the host, by the flusher's fence check where PostgreSQL does, or
else by the step's own self-fence - within the self-fence bound. After the heal the paused jobs are resumed.

Full scale only (`make chaos`): the quick test run covers self-fencing with scenarios 1 and 5.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from jobctl.workers.selffence import latest_stop_s
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

ROUNDS = scale(1, 3)  # per kind of cut
IN_FLIGHT = 14
LEASE_S = 3.0
PARAMS = {"steps": 2, "seconds": 3.0}
SLACK_S = 1.0  # a loaded machine's lateness, on top of the rule's own terms


def test_asymmetric_partitions_keep_the_guarantees_and_stops_still_land(
    cluster: Callable[..., Cluster], report: Callable[..., None]
) -> None:
    live = cluster(lease_s=LEASE_S, queue_lease_s=4.0)
    slack = 2 * live.settings.scheduler_tick_s + IDLE_IN_TRANSACTION_S + 1.0
    servers = live.servers
    cuts = [("PostgreSQL cut", servers.pg_port), ("Redis cut", servers.redis_port)]
    hosts = [live.network.host() for _ in range(2)]
    names = [f"asym{i}@chaos" for i in range(2)]
    live.start_scheduler()
    for host, name in zip(hosts, names, strict=True):
        live.spawn_on(host, name, concurrency=4)
    live.wait_up(*names)
    project = live.project()
    jobs: list[str] = []
    expected: dict[str, str] = {}  # job -> the state it must end in
    ops: list[dict[str, Any]] = []  # every operation on a cut-off host's step: what, when, and where it landed
    paused: list[str] = []
    targets = 0

    def submit() -> str:
        nonlocal targets
        targets += 1
        name = f"t{targets}"
        live.svc.ops.put_target(project, "record", name, {"n": 0})
        job_id = live.submit(project, "record", PARAMS, target=("record", name)).id
        jobs.append(job_id)
        expected[job_id] = "FINISHED"
        return job_id

    def unfinished() -> int:
        return sum(n for status, n in live.statuses(jobs).items() if status not in ("FINISHED", "DISCARDED"))

    began = time.monotonic()
    failure = ""
    recoveries: list[float] = []
    fenced_by_cut = {what: 0 for what, _ in cuts}  # self-fences on the cut-off host, during its cuts
    with OverdueSampler(live, slack) as sampler:
        try:
            for round_ in range(ROUNDS * len(cuts)):
                what, port = cuts[round_ % len(cuts)]
                victim = round_ % 2
                host, name = hosts[victim], names[victim]
                for _ in range(IN_FLIGHT - unfinished()):
                    submit()
                wait_all(
                    lambda n=name: len(live.running_on(n, min_progress=5)) >= 4,
                    30,
                    f"{name} to run four steps",
                    lambda: str(live.statuses(jobs)),
                )
                fenced_before = len(live.self_fences(name))
                host.partition([port])
                cut = datetime.now(UTC)
                steps = live.running_on(name)
                for (job_id, index, fence), action in zip(steps, ("pause", "discard", "auto-discard"), strict=False):
                    op_at = datetime.now(UTC)
                    if action == "auto-discard":
                        target = live.job(job_id).target
                        assert target is not None
                        live.svc.ops.put_target(project, "record", target.name, {"n": 1})
                    else:
                        live.op(job_id, action)
                    expected[job_id] = "DISCARDED" if action != "pause" else "FINISHED"
                    if action == "pause":
                        paused.append(job_id)
                    ops.append({"job": job_id, "step": index, "fence": fence, "action": action, "at": op_at})
                    ops[-1]["cut"] = what
                interrupted = [(j, i) for j, i, _ in steps[3:]]
                time.sleep(2 * LEASE_S)  # the cut lasts twice the lease (this is the fault, not a wait)
                host.heal()
                fenced_by_cut[what] += len(live.self_fences(name)) - fenced_before
                for job_id in paused:
                    live.wait_status(job_id, "PAUSED", timeout=30)
                    live.op(job_id, "resume")
                paused.clear()
                wait_all(
                    lambda s=interrupted: all(st == "FINISHED" for st, _, _ in live.step_state(s)),
                    60,
                    "the steps the cut interrupted to finish",
                    lambda: str(live.statuses(jobs)),
                )
                done = [at for _, _, at in live.step_state(interrupted) if at is not None]
                recoveries += [(at - cut).total_seconds() for at in done]
            wait_all(lambda: unfinished() == 0, 90, "every job to end", lambda: str(live.statuses(jobs)))
        except AssertionError as exc:
            failure = str(exc)
    live.kill_all()
    verdict = live.verdict()
    invalid = live.invalid_paths(jobs)
    wrong = [j for j in jobs if live.job(j).status.value != expected[j]]
    # where each stop landed: the step's code unwound (or raised as it was stopped), or its process was killed
    stopped = [s for name in names for s in fencing.stops(live.workers[name].log_path)]
    killed = [k for name in names for k in fencing.kills(live.workers[name].log_path)]
    fences = [f for name in names for f in live.self_fences(name)]
    ran = fencing.ran(fences)  # the attempts whose code ran (others were stopped before it)
    unfenced = fencing.unfenced_takeovers(live.svc.db.engine, fences, set(names))
    margins, _ = fencing.margins(live.svc.db.engine, fences)
    latest = latest_stop_s(live.settings)
    bound = latest + SLACK_S
    landed: list[tuple[str, str, float, bool]] = []  # (cut, action, seconds from the operation, by a self-fence)
    unlanded: list[dict[str, Any]] = []
    ended_by_itself: list[dict[str, Any]] = []
    ended = fencing.ended(live.svc.db.engine, [op["fence"] for op in ops])
    for op in ops:
        seen = [(at, fenced) for j, i, at, fenced in stopped if (j, i) == (op["job"], op["step"]) and at >= op["at"]]
        seen += [(at, False) for fence, at in killed if fence == op["fence"] and at >= op["at"]]
        if seen:
            at, fenced = min(seen)
            landed.append((op["cut"], op["action"], (at - op["at"]).total_seconds(), fenced))
        elif op["fence"] in ended:  # its code returned before the stop reached it (its outcome was refused)
            ended_by_itself.append(op)
        else:
            unlanded.append(op)
    by_cut = {
        what: [f"{a}:{s:.2f}s{' (self-fence)' if f else ''}" for c, a, s, f in landed if c == what] for what, _ in cuts
    }
    figures: dict[str, Any] = {
        "rounds": ROUNDS * len(cuts),
        "jobs": len(jobs),
        "lost": len(wrong),
        "stuck": sampler.stuck,
        "double_recorded": verdict.double_recorded,
        "double_executed": verdict.double_executed,
        "self_fence_s": round(max(f.stopped_after_s for f in ran), 3) if ran else None,
        "recover_s": round(max(recoveries), 2) if recoveries else None,
        "operations": len(ops),
        "operations_landed": len(landed),
        "operations_whose_step_ended_first": len(ended_by_itself),
        "landing_max_s": round(max(s for _, _, s, _ in landed), 2) if landed else None,
        "landing_bound_s": round(bound, 2),
        "landed_postgresql_cut": " ".join(by_cut[cuts[0][0]]),
        "landed_redis_cut": " ".join(by_cut[cuts[1][0]]),
        "self_fences": len(ran),
        "fenced_before_start": len(fences) - len(ran),
        "self_fences_postgresql_cut": fenced_by_cut[cuts[0][0]],
        "self_fences_redis_cut": fenced_by_cut[cuts[1][0]],
        "takeover_margin_min_s": round(min(m.margin_s for m in margins), 3) if margins else None,
        "unfenced_takeovers": len(unfenced),
        "double_dispatched": verdict.double_dispatched,
        "invalid_paths": len(invalid),
        "wall_s": round(time.monotonic() - began, 1),
    }
    checks = (
        Checks(failure)
        .add(not wrong, lambda: {j: (live.job(j).status.value, expected[j]) for j in wrong})
        .none_stuck(sampler)
        .add(not unlanded, f"operations whose stop never reached the step: {unlanded}")
        .add(all(s <= bound for _, _, s, _ in landed), landed)
        .add(all(m.margin_s > 0 for m in margins), margins)
        .add(not unfenced, f"attempts taken over while their code ran, not self-fenced: {unfenced}")
        .nothing_twice(verdict)
        .valid_paths(invalid)
    )
    report(
        "several hosts: asymmetric partitions",
        **figures,
        passed=checks.passed,
        error=failure.splitlines()[0] if failure else None,
        notes=(
            f"{ROUNDS} rounds of each cut (the host's packets to and from PostgreSQL's port, then Redis' port, "
            f"dropped for 2 x the lease, {LEASE_S:g} s), hosts in turn, {IN_FLIGHT} jobs ({PARAMS['steps']} steps x "
            f"{PARAMS['seconds']} s, each on a record target of its own) in flight on two 4-process workers; right "
            "after each cut one of the host's running jobs paused, one discarded, one auto-discarded (target "
            "changed). landed: seconds from the operation to the step's code stopped (the worker's log), and "
            "whether by the step's self-fence (a step whose code returned before any layer reached it - its "
            "outcome then refused - is counted apart, as ended first); lost: jobs not in their expected state "
            "(FINISHED after a resume, "
            "or DISCARDED); recover s: from a cut to the last of the host's other interrupted steps finished"
        ),
    )
    checks.assert_all()
