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

- **Throughput (met on SQLite, missed on PostgreSQL).** Raw Celery spends per task one broker message, one
  hand-over to the pool and one result write, and writes nothing durable. jobctl spends per job six committed
  write transactions: the submission (three INSERTs); one per step after the first, which finishes the step and
  starts the next one for the same pool process (`scheduler/handover.py`); and one in which the last step
  finishes the job and the freed slot takes the next PENDING job by the scheduler's rules (lock, limits, fair
  order) and starts its first step (`Scheduler.finish_and_take`). What took the figure from about 0.5, each
  change measured with this workload (paired rounds against raw Celery) before it was kept:
  1. *Prepared statements* (`scheduler/prepared.py`): SQLAlchemy compiles each hot-path statement once per
     dialect and its column types convert the values, but the statement runs on the driver's cursor, without
     a cache-key lookup, an execution context and a result object per call. One process's database work per
     job went from 5.5 ms to 2.3 ms on SQLite.
  2. *SQLite writers queue in the kernel* (`db.WriteLock`): an `flock` on `<database>-writers.lock` before
     `BEGIN IMMEDIATE`, instead of SQLite's busy handler sleeping 1, 2, 5 ms... between tries (40 % of the pool
     processes' time, py-spy).
  3. *No ping per transaction on the hot path*: a lost connection fails the transaction as invalidated and
     the worker retries it (`retry_disconnects`).
  4. *One Redis round trip per step, not two*: a pool process registers the attempt it runs under its own
     key (`keys.runner`), so the next attempt's registration replaces it and nothing has to be deleted when a
     step ends; the step's running time goes with the next round trip. 0.66 -> 0.72 (PostgreSQL), 1.24 -> 1.30
     (SQLite).
  5. *PostgreSQL: a step hands over in one statement* (`handover.hand_over_at_once`, jobs without a target):
     a data-modifying CTE locks the job row, finishes the step, claims and starts the next one and reads the
     job back, in autocommit mode - one round trip and its commit instead of `BEGIN`, the locked read, the
     writes and `COMMIT`. Before it, the two writes became one UPDATE (a CASE per column), and
     `finish_and_take` lost its savepoint (a failed take rolls back and the finish is committed alone).
     Round trips from the pool processes per job: 35 -> 17 to PostgreSQL (strace), 13 -> 8 to Redis; the
     three changes together about +10 % on PostgreSQL (0.72 -> 0.79 in paired probes).
  6. *The flusher thread is woken only when it is idle* (`workers/flusher.py`): in a chain of short steps it
     is still waiting for the previous step's tick, so waking it at every step only handed the GIL back and
     forth. SQLite 1.32 -> 1.41, PostgreSQL 0.77 -> 0.81 (paired probes, twice each).

  What limits PostgreSQL now (600-job rounds, CPU seconds per job from /proc, this machine's two cores):
  jobctl's side spends 12.2 ms of CPU per job - worker 5.55, PostgreSQL server 3.45, submitting client 1.45,
  scheduler 0.9, Redis 0.8 - against raw Celery's 10.1 per chain (worker 7.9, client 1.1, Redis 1.1); both
  sides keep about 1.6 of the 2 cores busy, so the ratio of CPU per job is the throughput ratio. (On SQLite
  jobctl's side spends 6.8 ms per job: worker 4.5, client 1.0, Redis 0.7, scheduler 0.6.) The server's
  share: 40 statements per job take 1.8 ms to execute (pg_stat_statements); the rest is per-message work
  and the six commits' WAL flushes (5.4 per job, some shared; a one-row INSERT and COMMIT took 0.48-0.59 ms
  with `synchronous_commit=on` against 0.25 ms with it off). The flush is what durability costs, and the
  benchmark keeps the server's default. Halving the round trips gained about 10 %, not more: the remaining
  cost is work, not waiting. Tried and not kept: psycopg's pipeline mode (a 5-statement transaction took as
  long: 602 against 638 us, with 9 socket writes instead of 5); a scheduler pass reading the project loads on
  a ping-less autocommit connection (no change measured); writing the one-statement hand-over's union as
  text to bring it under psycopg's 4 KiB statement cache limit (no change measured). Next: the submission as
  one statement on PostgreSQL (it is three INSERTs, one per step, and a commit), and `finish_and_take` in
  fewer round trips (it is 13: the finish, the dispatch lock, the loads, the candidates, the dispatch); each is
  worth a few per cent. Reaching 1.0 would take about 2.5 ms less CPU per job, most of the server's share.
  The history of this figure: 0.15 (SQLite) / 0.14 (PostgreSQL) with an ORM transition and a Celery round
  trip per step; 0.54 / 0.41 with the hand-over path on SQLAlchemy Core; then the changes above.
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
- **Progress cost.** `ctx.progress` is a C call: the `append` of a one-slot deque, which the flusher thread
  reads a few times a second. When the attempt is stopped it is replaced by a function that raises
  `StepStopped`, so a loop reporting progress still stops at its next call. It was a Python method storing
  a float and reading a flag: 49 ns per call in this loop, now 38-40. The rest is the call and the caller's
  own argument (`100.0 * i / n`, about half of it), against about 530-590 ns of loop body hashing 1 KiB; the
  ratio moved between 1.09 and 1.19 from run to run before the change. Against an empty loop body the
  figure is the call's cost alone, shown for context.
- **Memory.** Nothing is kept per job in a worker process; the resident memory after 10,000 jobs is that of
  the imported libraries and the connection pools.
"""
