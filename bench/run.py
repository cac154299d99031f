"""One benchmark run: start what it needs, run every measurement, print the table and write the report."""

from __future__ import annotations

import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from jobctl.bench import api_load, env, http_path, latency, scale, streams, throughput, user_path, workloads
from jobctl.bench.notes import NOTES
from jobctl.bench.peers import DramatiqSide, DurableCelerySide, ProcrastinateSide
from jobctl.bench.procs import Procs
from jobctl.bench.report import Row, markdown, ms, print_table, write
from jobctl.bench.sides import ADMIN_TOKEN, JobctlSide, RawSide
from jobctl.bench.stats import median

CONCURRENCY = 2  # prefork processes, on both sides


@dataclass(frozen=True)
class Plan:
    """How much of each measurement a run does."""

    throughput_rounds: int
    throughput_jobs: int
    stop_trials: int
    discard_trials: int
    progress_rounds: int
    progress_calls: int
    memory_small: int
    memory_large: int
    scale_rows: int
    dispatch_small: int
    dispatch_large: int
    dispatch_passes: int
    list_requests: int
    user_rounds: int  # the user's path: rounds of every side, and jobs per round
    user_jobs: int
    latency_requests: int  # POST /api/v1/jobs latency: requests per client count
    bulk_requests: int  # bulk submission: requests of BULK_SIZE jobs
    streams: int  # live updates: event streams open on one API process, and changes sent to them
    stream_changes: int
    load_rounds: int  # the API under load: rounds of every server, seconds of load on each per round
    load_seconds: float


BULK_SIZE = 1_000  # the API's limit per bulk request
QUICK = Plan(3, 100, 50, 50, 5, 100_000, 100, 1_000, 100_000, 1_000, 100_000, 10, 200, 2, 60, 100, 1, 100, 5, 1, 5)
FULL = Plan(
    7, 300, 100, 100, 9, 100_000, 1_000, 10_000, 1_000_000, 1_000, 100_000, 20, 400, 5, 200, 1_000, 10, 500, 20, 2, 15
)
LOAD_CLIENTS = 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Run:
    def __init__(self, plan: Plan, databases: Sequence[str], console: Console) -> None:
        self.plan = plan
        self.databases = list(databases)
        self.console = console
        self.rows: list[Row] = []
        self.conditions: list[str] = []
        self.failures = 0
        self.pg_admin: str | None = None
        self.procs: Procs | None = None
        self.redis_base = ""

    def say(self, message: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")

    def step(self, what: str, fn: Callable[[], None]) -> None:
        """Run one measurement; a failure becomes a MISSED row with the error, and the run goes on."""
        began = time.perf_counter()
        self.say(f"{what} ...")
        try:
            fn()
        except Exception as exc:
            self.console.print_exception(max_frames=3)
            self.rows.append(Row(what, "failed", "—", f"{type(exc).__name__}: {exc}"[:200], "—", False))
            self.failures += 1
        self.say(f"{what}: {time.perf_counter() - began:.0f} s")

    def run(self, workdir: Path) -> None:
        with Procs(workdir) as procs:
            redis_base = env.ensure_redis(procs)
            pg_admin = env.ensure_postgres(procs, workdir) if "postgresql" in self.databases else None
            self.pg_admin, self.procs, self.redis_base = pg_admin, procs, redis_base
            raw = RawSide(procs, redis_base, CONCURRENCY)
            try:
                for i, kind in enumerate(self.databases):
                    url, drop = env.fresh_database(kind, workdir, pg_admin)
                    try:
                        side = JobctlSide(procs, url, redis_base, CONCURRENCY)
                        try:
                            self._engine(kind, side, raw, first=i == 0)
                        finally:
                            side.close()
                    finally:
                        drop()
                if "postgresql" in self.databases:
                    assert pg_admin is not None
                    url, drop = env.fresh_database("postgresql", workdir, pg_admin)
                    try:
                        side = JobctlSide(procs, url, redis_base, CONCURRENCY, engine=False)
                        try:
                            self.step("scale (PostgreSQL)", lambda: self._scale(side))
                        finally:
                            side.close()
                    finally:
                        drop()
                else:
                    self.conditions.append("Scale rows skipped: they need PostgreSQL (`--database postgresql`).")
            finally:
                raw.close()

    # -- measurements ------------------------------------------------------------------------------------------

    def _engine(self, kind: str, side: JobctlSide, raw: RawSide, first: bool) -> None:
        p = self.plan
        label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        self.step(f"throughput ({label})", lambda: self._throughput(kind, label, side, raw))
        self.step(f"stop latency ({label})", lambda: self._stop(label, side, raw if first else None))
        side.start_api(_free_port())
        self.step(f"auto-discard latency ({label})", lambda: self._discard(label, side))
        self.step(f"the user's path ({label})", lambda: self._user_path(kind, label, side, raw))
        self.step(f"submission latency ({label})", lambda: self._submission_latency(label, side))
        self.step(f"bulk submission ({label})", lambda: self._bulk(label, side))
        self.step(f"the API under load ({label})", lambda: self._api_load(label, side))
        if first:
            self.step("live updates", lambda: self.rows.extend(streams.measure(side, p.streams, p.stream_changes)))
            self.step("progress cost", lambda: self._progress(side))
            self.step("worker memory", lambda: self._memory(label, side, raw))

    def _throughput(self, kind: str, label: str, side: JobctlSide, raw: RawSide) -> None:
        p = self.plan
        t = throughput.measure(kind, side, raw, p.throughput_rounds, p.throughput_jobs)
        self.rows.append(
            Row(
                f"throughput, {label}: 5-step no-op jobs, submit to FINISHED",
                f"{median(t.jobctl):.1f} jobs/s",
                f"{median(t.raw):.1f} chains/s",
                f"ratio {t.ratio:.2f}",
                "≥ 1.0",
                t.ratio >= 1.0,
                f"{p.throughput_rounds} paired rounds of {p.throughput_jobs} jobs; per-round ratios "
                + ", ".join(f"{a / b:.2f}" for a, b in zip(t.jobctl, t.raw, strict=True)),
            )
        )

    def _stop(self, label: str, side: JobctlSide, raw: RawSide | None) -> None:
        n = self.plan.stop_trials
        ours = latency.jobctl_stop(side, n)
        theirs = latency.raw_revoke(raw, n) if raw is not None else None
        self.rows.append(
            Row(
                f"stop latency, {label}: pause to code stopped + resources released + PAUSED durable",
                f"p50 {ms(ours.p(50))}, p99 {ms(ours.p(99))}",
                "—" if theirs is None else f"p50 {ms(theirs.p(50))}, p99 {ms(theirs.p(99))}",
                f"p99 {ms(ours.p(99))}",
                "p99 ≤ 100 ms",
                ours.p(99) <= 0.100,
                f"{n} trials; raw: `revoke(terminate=True)` until the task's process is gone"
                if theirs is not None
                else f"{n} trials",
            )
        )

    def _discard(self, label: str, side: JobctlSide) -> None:
        n = self.plan.discard_trials
        ours = latency.jobctl_auto_discard(side, n)
        self.rows.append(
            Row(
                f"auto-discard latency, {label}: DELETE target (API) to DISCARDED + step stopped",
                f"p50 {ms(ours.p(50))}, p99 {ms(ours.p(99))}",
                "—",
                f"p99 {ms(ours.p(99))}",
                "p99 ≤ 1 s",
                ours.p(99) <= 1.0,
                f"{n} trials through the HTTP API",
            )
        )

    def _user_path(self, kind: str, label: str, side: JobctlSide, raw: RawSide) -> None:
        p = self.plan
        api, token = side.api_url, ADMIN_TOKEN
        assert api is not None
        contenders = [
            user_path.Contender("jobctl, HTTP", lambda n: http_path.http_round(api, token, side.project(), n)),
            user_path.Contender("jobctl, client", lambda n: http_path.client_round(api, token, side.project(), n)),
            user_path.Contender("raw Celery", lambda n: throughput.raw_round(raw, n)),
        ]
        peers: list[DurableCelerySide | ProcrastinateSide] = []
        context: DramatiqSide | None = None
        try:
            assert self.procs is not None
            if kind == "postgresql" and self.pg_admin is not None:
                peers.append(DurableCelerySide(self.procs, self.pg_admin, self.redis_base, CONCURRENCY))
                peers.append(ProcrastinateSide(self.procs, self.pg_admin, CONCURRENCY))
            context = DramatiqSide(self.procs, self.redis_base, CONCURRENCY)
            contenders += [user_path.Contender(peer.name, peer.round) for peer in (*peers, context)]
            rounds = user_path.measure(contenders, p.user_rounds, p.user_jobs, max(5, p.user_jobs // 10))
        finally:
            for peer in (*peers, *([context] if context else [])):
                peer.close()
        note = f"{p.user_rounds} rounds of {p.user_jobs} jobs, every side in each round, the order rotating"
        ratio = rounds.ratio("jobctl, HTTP", context.name)
        self.rows.append(
            Row(
                f"context peer, {label}: jobctl through its HTTP API against {context.name}, 5-step no-op jobs",
                f"{rounds.median('jobctl, HTTP'):.1f} jobs/s",
                f"{rounds.median(context.name):.1f} chains/s (Dramatiq)",
                f"ratio {ratio:.2f}",
                "(context: no target)",
                None,
                f"{note}; per-round ratios {rounds.per_round('jobctl, HTTP', context.name)}; Dramatiq: {context.how}",
            )
        )
        for peer in peers:
            ratio = rounds.ratio("jobctl, HTTP", peer.name)
            self.rows.append(
                Row(
                    f"durable peer, {label}: jobctl through its HTTP API against {peer.name}, 5-step no-op jobs",
                    f"{rounds.median('jobctl, HTTP'):.1f} jobs/s",
                    f"{rounds.median(peer.name):.1f} chains/s ({peer.name})",
                    f"ratio {ratio:.2f}",
                    "≥ 1.5",
                    ratio >= 1.5,
                    f"{note}; per-round ratios {rounds.per_round('jobctl, HTTP', peer.name)}; {peer.name}: {peer.how}",
                )
            )
        for ours, how in (
            ("jobctl, HTTP", "one `POST /api/v1/jobs` at a time from one client, then the list API read every 10 ms"),
            ("jobctl, client", "`Client.submit` one after another, then each handle's `result()`"),
        ):
            ratio = rounds.ratio(ours, "raw Celery")
            self.rows.append(
                Row(
                    f"the user's path, {label}: 5-step no-op jobs, {how}, to FINISHED",
                    f"{rounds.median(ours):.1f} jobs/s",
                    f"{rounds.median('raw Celery'):.1f} chains/s",
                    f"ratio {ratio:.2f}",
                    "≥ 1.0",
                    ratio >= 1.0,
                    f"{note}; per-round ratios {rounds.per_round(ours, 'raw Celery')}",
                )
            )

    def _submission_latency(self, label: str, side: JobctlSide) -> None:
        p = self.plan
        api = side.api_url
        assert api is not None
        project = side.project()
        for clients in (1, 16):
            got = http_path.post_latencies(
                api,
                "/api/v1/jobs",
                lambda: http_path.job_body(project),
                http_path.auth(ADMIN_TOKEN),
                p.latency_requests,
                clients,
            )
            target = clients == 1
            self.rows.append(
                Row(
                    f"submission latency, {label}: `POST /api/v1/jobs` from {clients} concurrent client(s)",
                    f"p50 {ms(got.p(50))}, p99 {ms(got.p(99))}",
                    "—",
                    f"p50 {ms(got.p(50))}",
                    "p50 ≤ 2 ms" if target else "(context)",
                    got.p(50) <= 0.002 and got.errors == 0 if target else None,
                    f"{len(got.seconds)} requests, {got.errors} failed; each client a thread with its own keep-alive "
                    "connection (httpx); the scheduler and the worker run meanwhile",
                )
            )

    def _bulk(self, label: str, side: JobctlSide) -> None:
        p = self.plan
        api = side.api_url
        assert api is not None
        side.wait_quiet()  # the submission latency rows leave their jobs running
        got = http_path.bulk(api, ADMIN_TOKEN, side.project(), p.bulk_requests, BULK_SIZE)
        self.rows.append(
            Row(
                f"bulk submission, {label}: {got.jobs:,} jobs in {got.requests} `POST /api/v1/jobs/bulk`",
                f"{got.submit_s:.2f} s to the last answer; {got.jobs_per_s:.0f} jobs/s to FINISHED",
                "—",
                f"{got.submit_s:.2f} s",
                "≤ 1 s" if got.jobs >= 10_000 else "(quick: fewer jobs than the target's 10,000)",
                got.submit_s <= 1.0 if got.jobs >= 10_000 else None,
                "started once the jobs of the rows before had finished; one client, one request after another "
                "(the workers start on the first jobs meanwhile); then the list API read every 10 ms until every "
                "job (5 no-op steps) is FINISHED",
            )
        )

    def _api_load(self, label: str, side: JobctlSide) -> None:
        p = self.plan
        assert side.api_url is not None and self.procs is not None
        one, one_proc = side.api_url, side.api_proc
        project = side.project()
        feeder = api_load.Feeder(one, ADMIN_TOKEN, project).start()
        two_proc = bare_proc = None
        try:
            ids = feeder.running_ids(at_least=20)
            two = side.start_api(_free_port(), workers=2)
            two_proc, side.api_url, side.api_proc = side.api_proc, one, one_proc
            bare, bare_proc = api_load.start_bare(self.procs, _free_port())
            mix = api_load.paths(project, ids)
            servers = {
                "jobctl, 1 process": (one, ADMIN_TOKEN),
                "jobctl, --workers 2": (two, ADMIN_TOKEN),
                "bare FastAPI": (bare, None),
            }
            got: dict[str, list[api_load.Load]] = {name: [] for name in servers}
            names = list(servers)
            for r in range(p.load_rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    url, token = servers[name]
                    got[name].append(api_load.load(url, token, mix, LOAD_CLIENTS, p.load_seconds))
        finally:
            for proc in (two_proc, bare_proc):
                if proc is not None:
                    self.procs.stop(proc)
            feeder.stop()

        def merged(name: str) -> api_load.Load:
            loads = got[name]
            return api_load.Load(
                [s for load in loads for s in load.seconds], sum(x.errors for x in loads), sum(x.wall_s for x in loads)
            )

        base = merged("bare FastAPI")
        how = (
            f"{LOAD_CLIENTS} clients (asyncio, one keep-alive connection each, on the same 2 cores) for "
            f"{p.load_rounds} x {p.load_seconds:.0f} s per server, the order rotating; half the requests list a "
            "project's RUNNING jobs (page of 20), half read one job; 2 worker processes run 5-step `sleep` jobs "
            f"meanwhile ({feeder.submitted} submitted)"
        )
        for name in ("jobctl, 1 process", "jobctl, --workers 2"):
            ours = merged(name)
            self.rows.append(
                Row(
                    f"the API under load, {label}: {name}, reads by {LOAD_CLIENTS} concurrent clients",
                    f"{ours.per_s:.0f} req/s, p50 {ms(ours.p(50))}, p99 {ms(ours.p(99))}",
                    f"bare FastAPI: {base.per_s:.0f} req/s, p50 {ms(base.p(50))}, p99 {ms(base.p(99))}",
                    f"p99 {ms(ours.p(99))}; req/s ratio {ours.per_s / base.per_s:.2f}",
                    "p99 ≤ 50 ms, no error",
                    ours.p(99) <= 0.050 and ours.errors == 0,
                    f"{ours.errors} errors ({base.errors} on bare FastAPI); {how}",
                )
            )

    def _progress(self, side: JobctlSide) -> None:
        p = self.plan
        for work, target in (("digest", True), ("none", False)):
            cost = workloads.progress_cost(side, p.progress_rounds, p.progress_calls, work)
            body = "sha256 of 1 KiB per iteration" if work == "digest" else "empty loop body"
            self.rows.append(
                Row(
                    f"progress cost: {p.progress_calls:,} progress() calls, loop body: {body}",
                    f"{median(cost.with_calls) * 1000:.1f} ms with calls",
                    f"{median(cost.without) * 1000:.1f} ms without",
                    f"ratio {cost.ratio:.2f} ({cost.ns_per_call:.0f} ns/call)",
                    "≤ 1.1" if target else "(context)",
                    cost.ratio <= 1.1 if target else None,
                    f"{p.progress_rounds} paired rounds (each: fastest of 3 runs inside the step); 'raw Celery' "
                    "column: the same loop without the calls",
                )
            )

    def _memory(self, label: str, side: JobctlSide, raw: RawSide) -> None:
        p = self.plan
        ours = workloads.jobctl_memory(side, p.memory_small, p.memory_large)
        theirs = workloads.raw_memory(raw, p.memory_small, p.memory_large)
        self.rows.append(
            Row(
                f"worker memory ({label}): RSS after {p.memory_large:,} jobs / after {p.memory_small:,}",
                f"{ours.small_kib / 1024:.0f} → {ours.large_kib / 1024:.0f} MiB",
                f"{theirs.small_kib / 1024:.0f} → {theirs.large_kib / 1024:.0f} MiB",
                f"ratio {ours.ratio:.3f} (raw {theirs.ratio:.3f})",
                "≤ 1.1",
                ours.ratio <= 1.1,
                "main process + 2 pool processes; one-step no-op jobs (raw: no-op tasks)",
            )
        )

    def _scale(self, side: JobctlSide) -> None:
        p = self.plan
        began = time.perf_counter()
        projects = scale.load_history(side, p.scale_rows)
        self.say(f"loaded {p.scale_rows:,} jobs in {time.perf_counter() - began:.0f} s")
        side.start_api(_free_port())
        listed = scale.list_latency(side, projects, p.scale_rows, p.list_requests)
        from jobctl.bench.stats import percentile

        p95 = percentile(listed.seconds, 95)
        self.rows.append(
            Row(
                f"list API over {p.scale_rows:,} jobs: first page by project + status, default sort",
                f"p50 {ms(percentile(listed.seconds, 50))}, p95 {ms(p95)}",
                "—",
                f"p95 {ms(p95)}",
                "p95 ≤ 50 ms",
                p95 <= 0.050,
                f"{p.list_requests} requests through the HTTP API"
                + ("" if p.scale_rows >= 1_000_000 else " (quick mode: fewer rows than the 1,000,000 of the target)"),
            )
        )
        rate = scale.dispatch_rate(side, p.dispatch_small, p.dispatch_large, p.dispatch_passes)
        self.rows.append(
            Row(
                f"dispatch rate: {p.dispatch_large:,} PENDING jobs / {p.dispatch_small:,}",
                f"{median(rate.large_rates):.0f} jobs/s / {median(rate.small_rates):.0f} jobs/s",
                "—",
                f"ratio {rate.ratio:.2f}",
                "≥ 0.9",
                rate.ratio >= 0.9,
                f"{p.dispatch_passes} passes of 100 jobs each, over the {p.scale_rows:,} jobs above",
            )
        )


def main(quick: bool, databases: Sequence[str], output: Path | None, argv: Sequence[str]) -> int:
    """Run the benchmark; print the table; write the report to `output`. Exit status 0 (1 if it failed)."""
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    plan = QUICK if quick else FULL
    began = time.perf_counter()
    date = datetime.now(UTC)
    machine = env.machine()
    run = Run(plan, databases, console)
    run.say(f"jobctl bench ({'quick' if quick else 'full'}) on {machine.describe()}")
    with tempfile.TemporaryDirectory(prefix="jobctl-bench-") as tmp:
        try:
            run.run(Path(tmp))
        except KeyboardInterrupt:
            console.print("[bold red]interrupted; every process the benchmark started was stopped[/bold red]")
            return 130
    wall = time.perf_counter() - began
    title = f"jobctl vs raw Celery ({'quick' if quick else 'full'} run, {wall:.0f} s)"
    print_table(run.rows, title, console)
    conditions = [
        f"Workers: prefork, concurrency {CONCURRENCY} on both sides, log level WARNING on both sides; "
        "jobctl's scheduler runs as its own process with default settings.",
        "Raw Celery: Redis broker and Redis result backend; jobctl: Redis broker, no result backend, database "
        "as the truth (every transition committed).",
        f"Databases: {', '.join(databases)}; each jobctl database is fresh (SQLite file in a temporary "
        "directory, or a PostgreSQL database created and dropped by the run).",
        "The figures are ratios of the two sides measured in the same run, medians over the rounds.",
        *run.conditions,
    ]
    command = "jobctl " + shlex.join(argv)
    if output is not None:
        text = markdown(
            run.rows, machine=machine, date=date, command=command, wall_s=wall, conditions=conditions, notes=NOTES
        )
        write(output, text)
        console.print(f"report written to {output}")
    console.print(f"wall time: {wall:.0f} s")
    return 1 if run.failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main("--quick" in sys.argv, ["sqlite", "postgresql"], Path("docs/benchmarks.md"), sys.argv[1:]))
