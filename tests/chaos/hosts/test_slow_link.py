"""Several hosts, scenario 3: a slow link between the workers and PostgreSQL - 50 ms and then 200 ms added to
every round trip - against the same run without delay.

Two hosts, a 2-process worker on each, reach PostgreSQL through a relay on the bridge (`tests.chaos.relay`: this
machine's kernel has no `sch_netem`) that adds half the round trip to each direction; Redis and the scheduler are
not slowed. Each phase drains a batch of jobs (throughput) and then pauses long steps one by one (stop latency:
from the pause to the step's code stopped, in the worker's log); the paused jobs are resumed and finish. Nothing
may be lost, stuck or run twice; a self-fence here would be a spurious one (the link is slow, not cut) and is
counted.

Full scale only (`make chaos`): the quick test run covers self-fencing with scenarios 1 and 5.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.chaos import fencing
from tests.chaos.harness import FULL, Checks, OverdueSampler, scale, wait_all
from tests.chaos.hosts.cluster import Cluster
from tests.chaos.relay import Relay

pytestmark = [
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not FULL, reason="full scale only (make chaos): quick runs cover scenarios 1 and 5"),
]

ROUND_TRIPS_MS = [0, 50, 200]
JOBS = scale(10, 30)
STOPS = scale(5, 12)
LEASE_S = 6.0  # the production default is 15 s; 3 s (the other scenarios') is short for 200 ms round trips
PARAMS = {"steps": 2, "seconds": 0.2}


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.fixture
def relays() -> Iterator[list[Relay]]:
    made: list[Relay] = []
    yield made
    for relay in made:
        relay.stop()


def test_a_slow_link_to_postgresql_slows_jobs_down_but_loses_nothing(
    cluster: Callable[..., Cluster], report: Callable[..., None], relays: list[Relay]
) -> None:
    live = cluster(lease_s=LEASE_S, queue_lease_s=10.0)
    servers = live.servers
    relay = Relay(servers.address, servers.address, servers.pg_port).start()
    relays.append(relay)
    via = servers.database_url(live.settings.database_url.rsplit("/", 1)[1], port=relay.port)
    hosts = [live.network.host() for _ in range(2)]
    names = [f"slow{i}@chaos" for i in range(2)]
    live.start_scheduler()
    for host, name in zip(hosts, names, strict=True):
        live.spawn_on(host, name, concurrency=2, database_url=via)
    live.wait_up(*names)
    project = live.project()
    jobs: list[str] = []
    phases: list[dict[str, Any]] = []
    slack = 2 * live.settings.scheduler_tick_s + 1.0

    def stopped_at(job_id: str) -> datetime | None:
        """When a worker's log says the step of `job_id` stopped (None: not yet)."""
        found = [s[2] for n in names for s in fencing.stops(live.workers[n].log_path) if s[0] == job_id]
        return min(found) if found else None

    began = time.monotonic()
    failure = ""
    with OverdueSampler(live, slack) as sampler:
        try:
            for rtt_ms in ROUND_TRIPS_MS:
                relay.delay_s = rtt_ms / 2000
                batch = [live.submit(project, "record", PARAMS).id for _ in range(JOBS)]
                jobs += batch
                start = time.monotonic()
                wait_all(
                    lambda b=batch: live.statuses(b).get("FINISHED", 0) == len(b),
                    240,
                    f"the batch to drain at {rtt_ms} ms",
                    lambda b=batch: str(live.statuses(b)),
                )
                drain_s = time.monotonic() - start
                latencies: list[float] = []
                for _ in range(STOPS):
                    job_id = live.submit(project, "record", {"steps": 1, "seconds": 30.0}).id
                    jobs.append(job_id)
                    live.wait_step_running(job_id, 0, min_progress=1, timeout=60)
                    paused_at = datetime.now(UTC)
                    live.op(job_id, "pause")
                    wait_all(lambda j=job_id: stopped_at(j) is not None, 30, f"{job_id}'s pause to land", live.logs)
                    landed = stopped_at(job_id)
                    assert landed is not None
                    latencies.append((landed - paused_at).total_seconds())
                    live.op(job_id, "discard")  # its step would run 30 s more: given up, and not counted
                    jobs.remove(job_id)
                phases.append(
                    {
                        "rtt_ms": rtt_ms,
                        "jobs_per_s": round(JOBS / drain_s, 2),
                        "stop_p50_s": round(_p(latencies, 0.5), 3),
                        "stop_p99_s": round(_p(latencies, 0.99), 3),
                    }
                )
        except AssertionError as exc:
            failure = str(exc)
    live.kill_all()
    statuses = live.statuses(jobs)
    verdict = live.verdict()
    invalid = live.invalid_paths(jobs)
    fences = [f for name in names for f in live.self_fences(name)]
    ran = fencing.ran(fences)  # the attempts whose code ran (others were stopped before it)
    base = phases[0] if phases else None
    figures: dict[str, Any] = {
        "rounds": len(phases),
        "jobs": len(jobs),
        "lost": len(jobs) - statuses.get("FINISHED", 0),
        "stuck": sampler.stuck,
        "double_recorded": verdict.double_recorded,
        "double_executed": verdict.double_executed,
        "self_fence_s": round(max(f.stopped_after_s for f in ran), 3) if ran else None,
        "recover_s": "n/a",
        "jobs_per_s": ", ".join(f"{p['rtt_ms']} ms: {p['jobs_per_s']}" for p in phases),
        "throughput_vs_no_delay": ", ".join(
            f"{p['rtt_ms']} ms: {p['jobs_per_s'] / base['jobs_per_s']:.2f}" for p in phases if base
        ),
        "stop_p50_s": ", ".join(f"{p['rtt_ms']} ms: {p['stop_p50_s']}" for p in phases),
        "stop_p99_s": ", ".join(f"{p['rtt_ms']} ms: {p['stop_p99_s']}" for p in phases),
        "spurious_self_fences": len(ran),
        "fenced_before_start": len(fences) - len(ran),
        "double_dispatched": verdict.double_dispatched,
        "invalid_paths": len(invalid),
        "wall_s": round(time.monotonic() - began, 1),
    }
    checks = (
        Checks(failure)
        .add(figures["lost"] == 0, statuses)
        .none_stuck(sampler)
        .add(len(phases) == len(ROUND_TRIPS_MS), phases)
        .nothing_twice(verdict)
        .valid_paths(invalid)
    )
    report(
        "several hosts: slow link to PostgreSQL",
        **figures,
        passed=checks.passed,
        error=failure.splitlines()[0] if failure else None,
        notes=(
            f"two hosts, 2-process workers, reaching PostgreSQL through a relay that adds {ROUND_TRIPS_MS} ms to each "
            f"round trip (half each way; Redis and the scheduler not slowed); lease {LEASE_S:g} s. Each phase drains "
            f"{JOBS} jobs ({PARAMS['steps']} steps x {PARAMS['seconds']} s) submitted at once (jobs per s), then "
            f"pauses {STOPS} running steps one by one (stop: from the pause to the step's code stopped, the worker's "
            "log; those jobs are then discarded and not counted in jobs). A self-fence here is spurious: counted. "
            "recover s does not apply (no fault to recover from)"
        ),
    )
    checks.assert_all()
