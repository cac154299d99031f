"""Operation storm (issue 5, scenario 5): many clients pause, resume, restart, discard, delete and submit jobs
at random through the real API - one job at a time and in batches (atomic or not), while targets change under
half of them (auto-discard) - as a real scheduler and prefork worker run them.

Afterwards, in one consistent snapshot of the database: every job's history is a path through the transition
table, no final state was ever left, each job's status is its last event's and its steps agree with it, and
every refused operation (409 with `status` and `allowed`) changed nothing - each job carries exactly one event
per operation that was answered 200. No request ever got a 5xx. Once the storm stops, a few jobs are let run
to the end and the rest discarded: everything settles, and no step stays RUNNING past its lease meanwhile.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from jobctl.states import (
    FINAL,
    OPERATIONS,
    Action,
    JobStatus,
    allowed_from,
    allowed_operations,
    is_valid_path,
    target_of,
)
from tests.chaos.harness import Chaos, scale, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

TOKEN = "test-admin-token"
ADMIN = "admin"
PARAMS = {"steps": 3, "seconds": 0.3}
#: how often each request is sent; discard and delete end jobs, so they are rarer than the rest. `batch`: one of
#: the five operations on a few jobs at once (atomic or not); `touch`: change a target, auto-discarding its jobs
WEIGHTS = {"pause": 30, "resume": 30, "restart": 20, "discard": 3, "delete": 7, "submit": 4, "batch": 6, "touch": 1}
TARGETS = [f"t{i}" for i in range(4)]  # half the jobs are submitted against one of these `record` targets


@dataclass(frozen=True)
class Sent:
    """One request of the storm and its answer (code 0: no answer at all)."""

    job_id: str
    action: str
    code: int
    body: Any
    via: str = "single"  # "batch"/"atomic": one job's result in a batch answer; "held": not changed (atomic 409)


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)


def _send(api: httpx.Client, project: str, job_id: str, action: str, target: str | None = None) -> Sent:
    try:
        if action == "submit":
            job: dict[str, Any] = {"project": project, "type": "record", "params": PARAMS}
            if target:
                job["target"] = {"kind": "record", "name": target}
            answer = api.post("/api/v1/jobs", json=job)
        elif action == "touch":
            answer = api.put(f"/api/v1/projects/{project}/targets/record/{job_id}", json={"attributes": {"at": job_id}})
        elif action == "delete":
            answer = api.delete(f"/api/v1/jobs/{job_id}")
        else:
            answer = api.post(f"/api/v1/jobs/{job_id}/{action}")
    except httpx.HTTPError as exc:
        return Sent(job_id, action, 0, repr(exc))
    body = answer.json() if answer.content else None
    if action == "submit" and answer.status_code == 201:
        job_id = body["id"]
    return Sent(job_id, action, answer.status_code, body)


def _batch(api: httpx.Client, job_ids: list[str], action: str, atomic: bool) -> list[Sent]:
    """A batch operation, as one `Sent` per job (codes as if the job had been operated alone)."""
    try:
        answer = api.post("/api/v1/jobs/batch", json={"action": action, "ids": job_ids, "atomic": atomic})
    except httpx.HTTPError as exc:
        return [Sent("", "batch", 0, repr(exc))]
    body = answer.json()
    via = "atomic" if atomic else "batch"
    if answer.status_code == 409 and atomic:
        refused = {item["id"]: item for item in body["error"]["refused"]}
        return [
            Sent(i, action, 409 if refused[i]["status"] else 404, refused[i], via)
            if i in refused
            else Sent(i, action, 409, None, "held")
            for i in job_ids
        ]
    if answer.status_code != 200:
        return [Sent("", "batch", answer.status_code, body)]
    ok = 204 if action == "delete" else 200
    return [
        Sent(item["id"], action, ok if item["ok"] else 409 if item["status"] else 404, item, via)
        for item in body["results"]
    ]


def _problems_of_answer(sent: Sent, deleted: set[str]) -> list[str]:
    """What is wrong with one answer, against docs/contract.md §2 and §4 and the transition table."""
    where = f"{sent.action} {sent.job_id} ({sent.via}): {sent.code} {sent.body}"
    if sent.action == "submit":
        return [] if sent.code == 201 and sent.body["status"] == "PENDING" else [f"submit refused: {where}"]
    if sent.action in ("touch", "batch") or sent.via == "held":
        return [] if sent.code == 200 or sent.via == "held" else [f"unexpected answer: {where}"]
    action = Action(sent.action)
    if sent.code == 200:
        return (
            []
            if sent.body["status"] == target_of(action)
            else [f"answered a state the action does not lead to: {where}"]
        )
    if sent.code == 204:
        return [] if action is Action.DELETE else [f"204 for a non-delete: {where}"]
    if sent.code == 404:
        return [] if sent.job_id in deleted else [f"404 for a job never deleted: {where}"]
    if sent.code == 409:
        status = sent.body.get("status") if isinstance(sent.body, dict) else None
        allowed = sent.body.get("allowed") if isinstance(sent.body, dict) else None
        if sent.via != "single":  # a batch's refused job: its status, and the reason (docs/contract.md §4)
            allowed = allowed_operations(JobStatus(status)) if status else None
        if status is None or allowed is None:
            return [f"409 without status/allowed: {where}"]
        if JobStatus(status) in allowed_from(action) or allowed != allowed_operations(JobStatus(status)):
            return [f"409 that the table does not justify: {where}"]
        return []
    return [f"unexpected answer: {where}"]


@dataclass(frozen=True)
class Snapshot:
    jobs: dict[str, str]  # id -> status
    steps: dict[str, list[tuple[str, str | None]]]  # id -> [(status, fence)] in step order
    events: dict[str, list[tuple[str | None, str | None, str, str]]]  # id -> [(from, to, action, actor)]


def _snapshot(live: Chaos, project: str) -> Snapshot:
    """Jobs, steps and events of the project as of one instant (one REPEATABLE READ / SQLite read transaction)."""
    engine = live.svc.db.engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    where = "project_id = (SELECT id FROM projects WHERE name = :p)"
    with engine.connect() as conn, conn.begin():
        jobs = dict(conn.execute(sa.text(f"SELECT id, status FROM jobs WHERE {where}"), {"p": project}).all())
        steps: dict[str, list[tuple[str, str | None]]] = {job_id: [] for job_id in jobs}
        for job_id, status, fence in conn.execute(
            sa.text(
                f"SELECT job_id, status, fence FROM steps WHERE job_id IN (SELECT id FROM jobs WHERE {where})"
                " ORDER BY job_id, idx"
            ),
            {"p": project},
        ):
            steps[job_id].append((status, fence))
        events: dict[str, list[tuple[str | None, str | None, str, str]]] = {job_id: [] for job_id in jobs}
        for job_id, src, dst, action, actor in conn.execute(
            sa.text(
                "SELECT job_id, from_status, to_status, action, actor FROM events"
                f" WHERE job_id IN (SELECT id FROM jobs WHERE {where}) ORDER BY id"
            ),
            {"p": project},
        ):
            events[job_id].append((src, dst, action, actor))
    return Snapshot(jobs, steps, events)


def _steps_agree(status: str, steps: list[tuple[str, str | None]]) -> bool:
    """The steps a job in `status` may have: finished ones first, then the current one, then PENDING ones; a
    fence (a live attempt) only in a RUNNING job."""
    if any(fence is not None for _, fence in steps) and status != "RUNNING":
        return False
    names = [s for s, _ in steps]
    done = 0
    while done < len(names) and names[done] == "FINISHED":
        done += 1
    rest = names[done:]
    if status == "FINISHED":
        return not rest
    if status == "DISCARDED":
        return all(s == "DISCARDED" for s in rest)
    current = {"PENDING": {"PENDING"}, "RUNNING": {"PENDING", "RUNNING"}, "PAUSED": {"PAUSED", "PENDING"}}.get(
        status, {"ERROR"}
    )
    return bool(rest) and rest[0] in current and all(s == "PENDING" for s in rest[1:])


def _problems_of_job(job_id: str, snap: Snapshot, answered: Counter[tuple[str, str]] | None) -> list[str]:
    """What is wrong with one job in the snapshot (and, given the operations `answered` 200 by then, whether it
    records exactly those)."""
    events = snap.events[job_id]
    status = snap.jobs[job_id]
    problems = []
    path = [(src, dst, action) for src, dst, action, _ in events]
    if not is_valid_path(path):
        problems.append(f"{job_id}: not a path through the transition table: {path}")
    if any(src in FINAL for src, _, _, _ in events):
        problems.append(f"{job_id}: left a final state: {path}")
    if not events or events[-1][1] != status:
        problems.append(f"{job_id}: status {status} but last event {events[-1] if events else None}")
    if not _steps_agree(status, snap.steps[job_id]):
        problems.append(f"{job_id}: {status} with steps {snap.steps[job_id]}")
    if answered is None:
        return problems
    recorded = Counter(action for _, _, action, actor in events if actor == ADMIN and action in OPS)
    expected = Counter({op: n for (jid, op), n in answered.items() if jid == job_id and op in OPS})
    if recorded != expected:
        problems.append(f"{job_id}: operations recorded {dict(recorded)} but answered 200 {dict(expected)}")
    return problems


OPS = {op.value for op in OPERATIONS if op is not Action.DELETE}


def test_operation_storm(chaos: Callable[..., Chaos], report: Callable[..., None]) -> None:
    threads_n = scale(6, 20)
    jobs_n = scale(30, 200)
    storm_s = scale(4.0, 30.0)
    let_finish = scale(4, 20)
    live = chaos(lease_s=2.0, queue_lease_s=4.0)
    live.start_scheduler()
    live.spawn_worker("storm@test", concurrency=3)
    _, api_url = live.start_api()
    live.wait_up("storm@test")
    project = live.project()

    lock = threading.Lock()
    sent: list[Sent] = []
    with _client(api_url) as api:
        for target in TARGETS:
            assert _send(api, project, target, "touch").code == 200
        ids = [_send(api, project, "", "submit", TARGETS[n % 8] if n % 8 < 4 else None).job_id for n in range(jobs_n)]
    stop = threading.Event()
    stuck: list[int] = []

    def storm(seed: int) -> None:
        rng = random.Random(seed)
        actions, weights = list(WEIGHTS), list(WEIGHTS.values())
        with _client(api_url) as api:
            while not stop.is_set():
                action = rng.choices(actions, weights)[0]
                with lock:
                    job_id = rng.choice(ids)
                    some = rng.sample(ids, min(len(ids), rng.randint(2, 6)))
                if action == "batch":
                    answers = _batch(api, some, rng.choice(sorted(OPS | {"delete"})), atomic=rng.random() < 0.5)
                elif action == "touch":
                    answers = [_send(api, project, rng.choice(TARGETS), "touch")]
                else:
                    answers = [_send(api, project, job_id, action, rng.choice([None, *TARGETS]))]
                with lock:
                    sent.extend(answers)
                    if action == "submit" and answers[0].code == 201:
                        ids.append(answers[0].job_id)

    seen: Counter[str] = Counter()  # job states checked in the snapshots taken while things move
    live_problems: list[str] = []

    def sample() -> None:
        while not stop.wait(0.5):
            stuck.append(live.overdue(slack_s=1.0))
            now = _snapshot(live, project)  # any instant must be consistent, requests in flight or not
            seen.update(now.jobs.values())
            live_problems.extend(p for job_id in now.jobs for p in _problems_of_job(job_id, now, None))

    began = time.monotonic()
    workers = [threading.Thread(target=storm, args=(seed,), daemon=True) for seed in range(threads_n)]
    sampler = threading.Thread(target=sample, daemon=True)
    for thread in [*workers, sampler]:
        thread.start()
    stop.wait(storm_s)
    stop.set()
    for thread in workers:
        thread.join(timeout=60)
    storm_ran_s = round(time.monotonic() - began, 1)
    storm_sent = len(sent)

    # Every request has been answered: the database now holds exactly the operations answered 200.
    snap = _snapshot(live, project)
    answered_then = Counter((s.job_id, s.action) for s in sent if s.code == 200)
    live_problems += [p for job_id in snap.jobs for p in _problems_of_job(job_id, snap, answered_then)]
    seen.update(snap.jobs.values())

    # Settle: let a few jobs run to the end (resuming them if needed), discard the rest; all must become final.
    open_jobs = sorted(job_id for job_id, status in snap.jobs.items() if status not in FINAL)
    settle_began = time.monotonic()
    with _client(api_url) as api:
        for n, job_id in enumerate(open_jobs):
            if n >= let_finish:
                sent.append(_send(api, project, job_id, "discard"))
            elif snap.jobs[job_id] in ("PAUSED", "ERROR"):
                sent.append(_send(api, project, job_id, "resume"))
    stop.clear()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    notes = ""
    try:
        wait_all(
            lambda: all(s in FINAL for s in _snapshot(live, project).jobs.values()),
            scale(40, 90),
            "every job to settle in a final state",
            lambda: str(Counter(_snapshot(live, project).jobs.values())),
        )
    except AssertionError as exc:
        notes = str(exc)[:300]
    recover_s = round(time.monotonic() - settle_began, 2)
    stop.set()
    sampler.join()

    snap = _snapshot(live, project)
    deleted = {s.job_id for s in sent if s.action == "delete" and s.code == 204}
    answered = Counter((s.job_id, s.action) for s in sent if s.code == 200)
    problems = [p for s in sent for p in _problems_of_answer(s, deleted)]
    problems += [p for job_id in snap.jobs for p in _problems_of_job(job_id, snap, answered)]
    problems += [f"{job_id}: deleted, yet still there" for job_id in deleted & set(snap.jobs)]
    problems += live_problems
    codes = Counter(s.code for s in sent)
    errors_5xx = sum(n for code, n in codes.items() if code >= 500)
    unsettled = sum(1 for status in snap.jobs.values() if status not in FINAL)
    with live.svc.db.engine.connect() as conn:
        # restart runs a step again under a new token: count a completion twice only for the same token
        double_recorded = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT task_id FROM chaos_completions GROUP BY task_id HAVING count(*) > 1) d"
            )
        ).scalar_one()
    verdict = live.verdict()
    live.kill_all()  # no graceful shutdown needed: quicker teardown
    stuck_n = sum(1 for n in stuck if n)
    passed = not problems and not errors_5xx and not codes.get(0) and not unsettled and not stuck_n
    passed = passed and not double_recorded and not verdict.double_executed
    by_action = Counter(s.action for s in sent[:storm_sent])
    report(
        "operation storm",
        rounds=threads_n,
        jobs=len(set(ids)),
        lost=unsettled,
        stuck=stuck_n,
        double_recorded=double_recorded,
        double_executed=verdict.double_executed,
        recover_s=recover_s,
        storm_s=storm_ran_s,
        operations_sent=storm_sent,
        ops_per_s=round(storm_sent / storm_ran_s, 1),
        accepted=sum(1 for s in sent[:storm_sent] if s.code in (200, 201, 204)),
        refused_409=sum(1 for s in sent[:storm_sent] if s.code == 409),
        not_found_404=sum(1 for s in sent[:storm_sent] if s.code == 404),
        errors_5xx=errors_5xx,
        no_answer=codes.get(0, 0),
        deleted=len(deleted),
        mix=",".join(f"{a}:{n}" for a, n in sorted(by_action.items())),
        executions=verdict.executions,
        batch_items=sum(1 for s in sent[:storm_sent] if s.via != "single"),
        problems=len(problems),
        states_checked=",".join(f"{k}:{v}" for k, v in sorted(seen.items())),
        passed=passed,
        notes=notes
        or f"{threads_n} API clients for {storm_s:g} s (single and batch operations, target changes) on a "
        "3-process worker; rounds: client threads; figures count batch items as operations; then "
        f"{let_finish} jobs let finish, the rest discarded; recover s: until every job final; double recorded "
        "counted per attempt token (restart legitimately completes a step again)",
    )
    assert not problems, "\n".join(problems[:20])
    assert errors_5xx == 0 and codes.get(0, 0) == 0, codes
    assert not notes, notes
    assert unsettled == 0
    assert stuck_n == 0, stuck
    assert double_recorded == 0 and verdict.double_executed == 0, verdict
