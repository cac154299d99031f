"""What limits each figure: written by hand after profiling (py-spy on the pool processes, the scheduler and the
worker's main process during the throughput workload), kept with the code so that a rerun keeps it."""

NOTES = """
## What "durable" means here

Every transition of a jobctl job and step (dispatched, step RUNNING, step FINISHED + next attempt claimed,
job FINISHED, PAUSED, DISCARDED) is committed to the database before anything acts on it. On PostgreSQL
(default `synchronous_commit=on`) a commit survives a power loss. On SQLite jobctl uses WAL with
`synchronous=NORMAL`: a commit survives the crash or `kill -9` of any process, but the last commits before an
operating-system crash or power loss may be lost (the WAL is synced at checkpoints, not at every commit).
The raw Celery baseline keeps its chain's progress only in Redis (results written with the default
persistence of the Redis server it runs against).

## What limits the figures

- **Throughput.** Raw Celery spends per task one broker message, one hand-over to the pool and one result write,
  and writes nothing durable. jobctl spends per job six committed write transactions: the submission; one per
  step after the first, which finishes the step and starts the next one for the same pool process
  (`scheduler/store/handover.py`); and one in which the last step finishes the job and the freed slot takes the
  next PENDING job by the scheduler's rules (lock, limits, fair order) and starts its first step
  (`Scheduler.finish_and_take`). What took the figure from about 0.5, each change measured with this workload
  (paired rounds against raw Celery, old and new code alternating) before it was kept:
  1. *Prepared statements* (`scheduler/store/prepared.py`): SQLAlchemy compiles each hot-path statement once per
     dialect and its column types convert the values, but the statement runs on the driver's cursor, without a
     cache-key lookup, an execution context and a result object per call. One process's database work per job
     went from 5.5 ms to 2.3 ms on SQLite.
  2. *SQLite writers queue in the kernel* (`store.db.WriteLock`): an `flock` on `<database>-writers.lock` before
     `BEGIN IMMEDIATE`, instead of SQLite's busy handler sleeping 1, 2, 5 ms... between tries (40 % of the pool
     processes' time, py-spy).
  3. *No ping per transaction on the hot path*: a lost connection fails the transaction as invalidated and the
     worker retries it (`retry_disconnects`).
  4. *PostgreSQL: a step hands over in one statement* (`handover.hand_over_at_once`, jobs without a target): a
     data-modifying CTE locks the job row, finishes the step, claims and starts the next one and reads the job
     back, in autocommit mode - one round trip and its commit instead of `BEGIN`, the locked read, the writes
     and `COMMIT`.
  5. *The flusher thread is woken only when it is idle* (`workers/flusher.py`).
  6. *A step never waits for Redis* - the largest single gain, PostgreSQL 0.69 -> 0.82 in paired probes. Each
     step cost the pool process one Redis round trip (announce the step, register the attempt for stops,
     metrics); on two cores shared by seven busy processes a round trip is mostly waiting to be scheduled, about
     0.5 ms. Now the attempt is registered in a small local file that the worker's main process reads
     (`workers/runners.py`), the announcement goes out without waiting for its reply (`scheduler/outbox.py`: the
     replies are read before the next send), and histogram observations are held up to a second and sent as one
     count per bucket (`Metrics.observe_many`). A bound measured first: dropping the round trip altogether gave
     0.70 -> 0.92.
  7. *The scheduler pauses 20 ms after a pass that found every slot taken* (`loop.FULL_PAUSE_S`): a burst of
     submissions wakes it once per job, and each wake-up cost a pass (Redis scan of the workers, the loads
     query): about 0.85 ms of CPU per job across the scheduler, PostgreSQL and Redis. 0.84 -> 0.94.
  8. *Flower events of inline attempts go 500 per message* (at the latest a second after the oldest, from the
     flusher's tick) instead of 24: a message's cost hardly depends on its size. About +5 %; a long step taken
     inline now shows STARTED in Flower while it runs (it did not until its chain ended).
  9. *psycopg runs the prepared statements on a `RawCursor` with `$n` placeholders*: it had re-parsed the 5.6 KB
     hand-over statement on every call (its parse cache stops at 4 KiB), 10 % of a pool process's time. About +2
     %.
  10. *PostgreSQL: several writes as one statement* (`prepared.Writes`, data-modifying CTEs): the finish of a
      job (step, job, event) and the dispatch of the taken one (job, step, event), 3 round trips -> 1 each; the
      submission (job, steps as one multi-row INSERT, event), 3 -> 1. About +3 % each.
  11. *A take in fewer round trips*: the dispatch lock is taken in the finish's own statement, and a pass that
      starts one job reads the project loads and each project's first PENDING job together
      (`store.dispatch.project_loads_and_heads`). About +3 % each (1.03 -> 1.07, 1.07 -> 1.11 in paired probes).
  12. *A thread keeps its own connection for statements that stand alone* (`store.db._Pinned`): the
      one-statement hand-overs and the standalone reads ran on a connection taken from the pool and given back
      each time, with the isolation level set and reset - about a tenth of a pool process's time (py-spy).
  13. *PostgreSQL: a job without a target is submitted in one statement* (`submission.insert_job_at_once`): the
      project looked up by name, the job, its steps and its event, committing by itself - one round trip instead
      of four (`BEGIN`, the project, the insert, `COMMIT`). The submitting client's CPU per job went from
      1.4-1.9 ms to 1.0-1.3 (raw Celery's client: 1.0-1.3). With 12: 1.00/0.94 -> 0.97/1.13 in paired `--quick`
      runs (docs/benchmark-checks.md, session 14).
  14. *PostgreSQL: each project's next PENDING job is read in a LATERAL subquery*
      (`store.dispatch.project_loads_and_heads`). Joined by id to a scalar subquery, the planner hashed the
      whole `jobs` table instead - and a prepared statement keeps the plan chosen while the table was small:
      every finish-and-take read every job, 0.9 ms a call at 3,000 jobs and growing (pg_stat_statements). Now
      0.05 ms; PostgreSQL's CPU per job fell from 4.2-4.8 ms to 3.2-3.9 in paired probes, and the rows that
      run later, on a fuller table, gained most (the user's path 0.56/0.63 -> 0.77-0.84, procrastinate 0.84 ->
      1.02-1.11). `tests/scheduler/store/test_dispatch.py` holds the generic plan to reading no ended job.
  15. *PostgreSQL: the taken job is dispatched in one statement* (`handover.dispatch_and_start_at_once`, jobs
      without a target): its locked read and its writes, one round trip instead of two inside the
      finish-and-take, which also holds the dispatch lock for one round trip less. +3-5 % in 8 paired probes
      (docs/benchmark-checks.md, session 15).

  Where the time goes now (600-job rounds on PostgreSQL, CPU ms per job from /proc, session 11's machine, Intel):
  jobctl 6.8-7.3 - worker 3.0-3.2, PostgreSQL server 2.4-2.5, submitting client 0.8-1.0, Redis 0.3, scheduler 0.15 -
  against raw Celery's 7.2-7.3 per chain (worker 5.5-5.6, client 0.7-0.8, Redis 0.8); session 5 began at 12.2 against
  10.1. On session 14's machine (AMD EPYC, two cores shared with other guests) every figure is about 40 % higher and
  moves by 20 % within minutes: jobctl 9.1-10.3 (worker 4.2-5.4, PostgreSQL 3.2-3.6, client 1.0-1.3) against raw
  Celery's 9.5-10.2 (worker 7.0-7.7, Redis 1.2), so the figure came out below 1.0 there: 0.88, 0.92 and 0.95 in
  session 14's three full runs (rounds from 0.78 to 1.14), where session 11's machine gave 1.04. After 14 and 15
  (session 15, same machine): jobctl 8.5-11.3 (worker 4.0-5.5, PostgreSQL 3.0-3.9, client 0.8-1.1), and 1.08, 1.22 and
  1.03 in three full runs. On SQLite jobctl spends 3.7 ms per job (worker 2.7, client 0.7) and is bound by the
  commits' latency, not by CPU. PostgreSQL executes 24 statements per job (40 before these changes; 1.5-1.9 ms of
  execution with the lock waits, pg_stat_statements); a pool process makes 10 round trips to it per job (17 before): 4
  one-statement hand-overs and, for the finish-and-take, `BEGIN`, the locked read, the finish (with the dispatch
  lock), the loads and heads, the taken job's dispatch and `COMMIT`. On two shared cores a round trip is mostly
  waiting to be scheduled, so each one removed is worth more than its CPU. Every commit's WAL flush is kept
  (`synchronous_commit=on`, the server's default): that is what durability costs. Tried and not kept (no gain
  measured): the finish's locked read folded into its writes (one statement, as for the dispatch: new/old 1.015 in 12
  paired probes, session 15), psycopg's pipeline mode, a ping-less autocommit read for the scheduler's loads,
  fillfactor on `jobs` and `steps` (no update became HOT: each changes an indexed column). The history of this figure
  (SQLite / PostgreSQL): 0.15 / 0.14 with an ORM transition and a Celery round trip per step; 0.54 / 0.41 with the
  hand-over path on SQLAlchemy Core; 1.21 / 0.66 (session 4); 1.44 / 0.83 (session 5); now the figures above.
- **Stop latency.** A pause commits PAUSED, records the stop request in Redis, and broadcasts the stop command;
  the worker's main process signals the pool process (SIGUSR2), whose handler confirms the stop in Redis and
  raises inside the step; the step's resources are released while it unwinds. The broadcast and the worker's
  event loop dominate; raw `revoke(terminate=True)` is the same broadcast plus SIGTERM.
- **Auto-discard latency.** The same stop, behind an HTTP request whose transaction deletes the target and
  discards its jobs.
- **List API.** The first page filtered by project and status is an index range scan of
  `ix_jobs_project_status_created` in reverse; the `total` is a count over the same index, so it grows with the
  number of matching jobs (the dominant cost at 1,000,000 rows).
- **Dispatch rate.** `pending_candidates` reads each project's next jobs with its own index range scan
  (`ix_jobs_dispatch`, which now ends in `id`, migration 0002) instead of ranking every PENDING job with a
  window function, so a pass costs the same with 1,000 or 100,000 PENDING jobs.
- **The user's path.** What a script or a web app does: one `POST /api/v1/jobs` after another from one
  client, then the list API read until every job is FINISHED (or `jobctl.client`'s `submit` and each handle's
  `result()`). One client cannot submit faster than one request's latency allows, so this figure is bound by
  the submission latency below, not by the workers: a 5-step job runs in a few milliseconds of worker time.
  The client row's `result()` calls read the jobs that ended together: a wait that sees its own job end
  reads which of the client's other handles' jobs ended too, in one list request by id, and a handle holding
  a FINISHED job returns without a request (it sent one `GET` per job before: 1.2-1.66x in paired runs,
  docs/benchmark-checks.md, session 13). On PostgreSQL both rows stay below raw Celery because each
  `POST` waits for its commit's WAL flush, which a raw Celery chain never does, and takes 5-9 ms while the
  workers run (3 ms with the API alone; see "Submission latency"): 200 `POST`s are most of a round. They rose
  from 0.56/0.63 to 0.77-0.84 when the finish-and-take stopped reading every job (Throughput, 14): these rows
  run after the in-process ones, on a table of thousands of jobs. Taking the account's read off its own
  thread hop (an `async` dependency) left the p50 under load where it was (5.4 against 5.0 ms): the time goes
  to waiting for a core, not to the hops. The API, the scheduler, the worker's three processes, PostgreSQL,
  Redis and the client share two cores.
- **Durable peers.** Celery with the database result backend writes every task's result in its own
  transaction through SQLAlchemy's ORM; procrastinate defers each link with one `INSERT` through a stored
  function and its workers take jobs with `procrastinate_fetch_job`, woken by LISTEN/NOTIFY. Dramatiq, the
  context peer, keeps a job's state in Redis only and runs 8 threads per process: a link is a Redis message
  and a result write, nothing is committed. jobctl's side of these rows is the HTTP path above, bound by one
  client's `POST` latency on two shared cores: against procrastinate it went from 0.84 to 1.02-1.11 with
  Throughput item 14, short of 1.5; the next step is the submission latency under load.
- **Submission latency.** A bare FastAPI `POST` with a pydantic body answers in 1.4-1.9 ms over HTTP on this
  machine (uvicorn with httptools on uvloop, httpx client), so the 2 ms target leaves about 0.3 ms for the
  authentication, the durable write and its notification. The caller and their roles are one statement outside a
  transaction (`Database.query`: in-process 19 µs on SQLite, 158 µs on PostgreSQL, from 349 µs and 1,320 µs as
  two ORM queries in a pinged read transaction); the project is read once, inside the write, and the write is
  not pinged first (`Database.transact`). With only the API running, a `POST` now takes 2.2 ms p50 on SQLite and
  3.1 ms on PostgreSQL, from 2.9 and 5.3 (paired runs, docs/benchmark-checks.md). On PostgreSQL a job without a
  target is now one statement that looks the project up by name and commits by itself
  (`submission.insert_job_at_once`), where it was four round trips (BEGIN, the project, the insert, COMMIT), and
  the account's read and the insert run on the API thread's own connection, not one taken from the pool: 3.2-3.7
  ms -> 2.5-2.9 ms p50 in paired runs on session 14's machine (docs/benchmark-checks.md). What remains is the
  round trip and the commit's WAL flush, about 0.25 ms: jobctl keeps `synchronous_commit` on, as an acknowledged
  job must survive a crash. In this row the scheduler and the workers run the submitted jobs on the same two
  cores. Sending the notifications without waiting for Redis's replies gained 1-3 % and was not kept. From 16
  clients one API process is saturated: the p50 is the queue in front of it.
- **Bulk submission.** With only the API running, a request of 1,000 jobs takes about 100 ms on SQLite and
  120 ms on PostgreSQL: the inserts of 1,000 jobs, 5,000 steps and 1,000 events (46 ms and 72 ms in-process,
  most of it the five indexes of `jobs` that the list and the dispatch read), 1,000 job announcements to
  Redis, and the 1.1 MB answer (every job with its steps, as the contract asks), whose JSON is built once for
  the step records the new jobs share. Start-up's objects are frozen out of the garbage collector (a full
  collection every other request cost 50-60 ms). The row starts once the jobs of the rows before it have
  finished; the workers start on the first jobs while the next requests arrive, and each request then takes
  160-230 ms on PostgreSQL (a probe, session 15): the ten cost 1.8-2.7 s, where the target needs the 100-120 ms
  of an idle machine.
- **Live updates.** One Redis subscription per API process (`api/hub.py`) parses and renders each change once
  and queues it for every stream that may see it; with one subscription per stream (before), 500 streams
  reached p99 0.82 s, now about 60 ms in a development run. A stream that falls 1,000 changes behind, or whose
  client takes nothing for 10 s, is disconnected (and counted in `/metrics`); the client reconnects and
  resyncs. The streams are read by one asyncio loop in the benchmark's process, on the same two cores.
- **The API under load.** 32 clients in a closed loop: each sends its next request when the last is answered,
  so the p50 is about 32 requests' worth of the process's time per request. The bare FastAPI app shows what
  uvicorn, FastAPI and the clients cost on their own here (its p99: 24-30 ms in the 2026-12-04 full run). A
  jobctl read spends its time in the caller's account, the caller's projects, the query (a count and a page,
  or the job and its steps) and the response model. The account is one statement, whole jobs are read as
  plain rows (one job and its steps in one prepared statement; a page's jobs, then their steps) instead of ORM
  objects, and the project ids by name in one Core statement: together 1.4x the requests on SQLite and 1.25x
  on PostgreSQL in paired runs. Limiting the API's threads to 6 (from anyio's 40), with a pooled connection
  for each, served 1.25-1.5x on SQLite earlier. During the load the API process uses about 85 % of a core
  (its threads share one interpreter lock), the 32 clients about 40 %, the workers the rest; `--workers 2`
  uses the second core. The 50 ms p99 needs about 640 requests a second from a process on cores it shares with
  the workers and the load generator: not reached.
- **Progress cost.** `ctx.progress` is a C call: the `append` of a one-slot deque, which the flusher thread
  reads a few times a second. When the attempt is stopped it is replaced by a function that raises
  `StepStopped`, so a loop reporting progress still stops at its next call. It was a Python method storing
  a float and reading a flag: 49 ns per call in this loop, now 38-40. The rest is the call and the caller's
  own argument (`100.0 * i / n`, about half of it), against about 530-590 ns of loop body hashing 1 KiB; the
  ratio moved between 1.09 and 1.19 from run to run before the change. Against an empty loop body the
  figure is the call's cost alone, shown for context.
- **Worker memory.** Nothing is kept per job in a worker process; the resident memory after 10,000 jobs is that of
  the imported libraries and the connection pools.
"""
