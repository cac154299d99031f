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

- **Throughput (missed).** Raw Celery spends per task one broker message, one hand-over to the pool and one
  result write, and writes nothing durable. jobctl spends per job six write transactions and about a dozen
  Redis round trips, each transaction committed before anything acts on it: the submission (three INSERTs);
  one transaction per step after the first that finishes the step and starts the next one for the same pool
  process (`scheduler/handover.py`); and one in which the last step finishes the job and the freed slot takes
  the next PENDING job by the scheduler's rules (lock, limits, fair order) and starts its first step
  (`Scheduler.finish_and_take`; the take is a savepoint, so a failed take never undoes the finish). Each is a
  few prepared Core statements - one read of the job, its project's name and its steps, locked; fenced
  UPDATEs; the event INSERT - with no ORM load-modify-flush and no read-back: the job it announces is built
  from what it wrote. A step's Redis work is two pipelined round trips (its announcement, its pid registration
  for stops and its waiting-time metric; then the pid removal and its duration metric); a transition's
  announcements, counters and scheduler wake-up are one more. What limits the figure now, from py-spy on the
  pool processes during this workload (sampled wall-clock time of the task-running thread): on SQLite about a
  third is waiting for the single write lock (`BEGIN IMMEDIATE`: the other pool process, the scheduler or the
  submitting client holds it; SQLite's busy handler sleeps 1, 2, 5 ms... between tries) and a sixth Redis
  round trips; on PostgreSQL half is waiting for the server (a network round trip per statement, a connection
  ping per transaction from `pool_pre_ping`, kept because it lets every process ride out a terminated
  connection) and a sixth Redis. On two shared cores the pool processes, the scheduler, the submitting client,
  Redis and the PostgreSQL server compete for the CPU. Tried and not kept: serialising SQLite writers with an
  `flock` in front of `BEGIN IMMEDIATE` (no measurable change). What would take it further: batch submission
  (one transaction for many jobs), a pool process keeping its database connection across its transactions (no
  ping per transaction), and worker registrations in one Redis hash instead of keys found by SCAN. Reaching
  1.0 against a baseline that writes nothing durable is not reached here. The history of this figure: 0.15
  (SQLite) / 0.14 (PostgreSQL) with an ORM transition per step and a Celery round trip per step; each change
  above was measured with the same workload before it was kept.
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
- **Progress cost.** `progress()` stores a float and reads a flag (no lock, no call); the flusher thread writes
  the latest value a few times a second. With a realistic loop body (hashing 1 KiB) the calls are in the noise;
  against an empty loop body the figure is the cost of a Python method call, shown for context.
- **Memory.** Nothing is kept per job in a worker process; the resident memory after 10,000 jobs is that of
  the imported libraries and the connection pools.
"""
