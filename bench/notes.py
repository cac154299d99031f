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

- **Throughput (missed by a wide margin).** Raw Celery spends per task one broker message, one hand-over to
  the pool and one result write, and writes nothing durable. jobctl spends per step one write transaction
  (finish step i: FINISHED + output, and start step i+1: fence check, target check, RUNNING, lease - one
  commit), a few Redis round trips (the job event behind the API's live updates, two metrics, the attempt's
  pid registration that stops need), and per job a dispatch pass and the submission's own transaction (insert
  job, steps and event, announce). SQLite and PostgreSQL give the same figure, so the database engine is not
  the limit: the CPU is. Two cores are shared by the two pool processes, the scheduler, the submitting client
  and Redis, and a jobctl step costs several milliseconds of Python - about a dozen SQL statements through
  SQLAlchemy's ORM (load, modify, flush) in its transaction and the loading of the job it announces. Profiled
  with py-spy on a pool process (SQLite): a third of its busy time is that one transaction, most of it spent
  waiting for SQLite's single write lock (`BEGIN IMMEDIATE`: the other pool process holds it for its own
  transaction), a tenth the dispatch pass after each job, under a tenth the Redis round trips.
  What was changed for this figure (`workers/runtime.py:run_attempt`, `scheduler/operations.py:record_outcome`,
  `scheduler/loop.py:Scheduler.claim`): a step no longer costs a Celery round trip - the pool process runs
  the job's next step itself, started in the same transaction that finished the previous one; once the job
  finished it dispatches the next PENDING job its slot may take (the scheduler's own lock, limits and fair
  order) instead of waking the scheduler, for up to 2 s per task, after which the queue takes over again;
  a finished step no longer writes its progress separately; the Flower task events of such steps are
  buffered and sent in one message. Every transition is still committed before anything acts on it, fenced
  by the attempt's token, target-checked at each step start, and stoppable (the stop command finds an inline
  attempt by the pid it registers). What would take it further: Core `UPDATE ... WHERE fence = :fence`
  statements instead of ORM load-modify-flush in the hot path, one Redis pipeline per step for all its
  notifications, and batch submission. Reaching 1.0 against a baseline that writes nothing durable would
  need most of that, and is not reached here.
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
