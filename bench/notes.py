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
  hand-over to the pool and one result write, and writes nothing durable. jobctl spends per job six write
  transactions and about a dozen Redis round trips, each transaction committed before anything acts on it: the
  submission (three INSERTs); one transaction per step after the first that finishes the step and starts the next
  one for the same pool process (`scheduler/handover.py`); and one in which the last step finishes the job and the
  freed slot takes the next PENDING job by the scheduler's rules (lock, limits, fair order) and starts its first
  step (`Scheduler.finish_and_take`; the take is a savepoint, so a failed take never undoes the finish). Each is a
  few statements (one read of the job, its project's name and its steps, locked; fenced UPDATEs; the event INSERT),
  with no ORM load-modify-flush and no read-back. Three changes took the figure from about 0.5 to what the table
  shows, each measured with this workload before it was kept:
  1. *Prepared statements* (`scheduler/prepared.py`): SQLAlchemy compiles each hot-path statement once per
     dialect and its column types convert the values, but the statement runs on the driver's cursor, without
     a cache-key lookup, an execution context and a result object per call (most of a small statement's CPU).
     A worker's transactions use a Core connection, not an ORM session. One process's database work per job
     went from 5.5 ms to 2.3 ms on SQLite.
  2. *SQLite writers queue in the kernel* (`db.WriteLock`): before `BEGIN IMMEDIATE`, jobctl's writers take
     an `flock` on `<database>-writers.lock`, and the kernel wakes the next one the moment the lock is let go.
     SQLite's busy handler had made a writer that found the database locked sleep 1, 2, 5 ms... between
     tries: with transactions now a few tenths of a millisecond long, 40 % of the pool processes' time went
     to those sleeps (py-spy). (Tried in an earlier session with the old, longer transactions: no change.)
  3. *No ping per transaction on the hot path*: the worker's transactions come from a pool without
     `pool_pre_ping` (a round trip on PostgreSQL); a lost connection fails the transaction as invalidated and
     the worker retries it (`retry_disconnects`), as before. Every other process keeps the ping.

  What limits it now. SQLite: the CPU - the pool processes, the scheduler, the submitting client and Redis
  share two cores, and jobctl's side uses less CPU per job than raw Celery's. PostgreSQL: the round trips, five
  per hand-over (`BEGIN`, the locked read, two UPDATEs, `COMMIT`) and about fifteen for finish-and-take, each
  costing CPU in the client and in the server on the same two cores; and each of a job's six commits waits for
  the WAL flush that makes it durable (`synchronous_commit=on`; a one-row INSERT and COMMIT took 0.48-0.59 ms
  on this machine against 0.25 ms with the flush turned off). py-spy on the pool processes (wall time of the
  task thread, 500-job rounds): 53 % waiting for PostgreSQL, of which 30 % of all the time is the hand-overs'
  `COMMIT` - the WAL flush - and about 9 % each the locked reads and the writes. The flush is what durability
  costs; `synchronous_commit=off` would remove it but lose the last commits if the server crashed, and the
  benchmark keeps the server's default. Tried and not kept: psycopg's pipeline
  mode (`BEGIN` sent with the read, the writes together) - entering and leaving it per transaction made more
  waits for the server, not fewer (19,286 against 13,886 for 300 jobs in a single-process probe). Next: a
  hand-over that writes without reading first (the fenced UPDATE decides; the job as announced kept by the
  worker from its start), one statement for the two UPDATEs on PostgreSQL, and batch submission. The history
  of this figure: 0.15 (SQLite) / 0.14 (PostgreSQL) with an ORM transition and a Celery round trip per step;
  0.54 / 0.41 with the hand-over path on SQLAlchemy Core; then the three changes above.
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
- **Progress cost (at the target's edge).** `progress()` stores a float and reads a flag (no lock, no further
  call); the flusher thread writes the latest value a few times a second. What is left is the Python method
  call itself and the caller's `100.0 * i / n`: 60 to 80 ns against about 590 ns of loop body hashing 1 KiB,
  so the ratio lands between 1.09 and 1.19 from run to run on this machine, with the code unchanged. About half
  of it is the caller's own argument: timed alone (timeit, best of 30), an iteration calling
  `ctx.progress(100.0 * i / n)` costs 72 ns more than an empty one, computing `100.0 * i / n` alone 38 ns, and
  the call with a constant 37 ns. No cheaper call was kept: `functools.partial(list.__setitem__)` was slower,
  and a deque's C `append` as `progress` saved about 10 ns but would drop `progress()`'s own stop check. Against
  an empty loop body the figure is the call's cost alone, shown for context.
- **Memory.** Nothing is kept per job in a worker process; the resident memory after 10,000 jobs is that of
  the imported libraries and the connection pools.
"""
