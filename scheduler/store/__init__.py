"""The database: one module per thing it holds, imported by name (`from jobctl.scheduler.store import jobs`).

- `models`: the tables (SQLAlchemy 2 declarative), `db`: the engine and its read/write sessions.
- `accounts`: users, projects and roles. `targets`: the record targets a job may act on.
- `submission`: new jobs and their steps. `jobs`: reading jobs, their events and logs, purging ended ones.
- `transitions`: the one writer of a job's status, and the rules for an attempt (claim, start, finish,
  stop, book time) that every path applies. `handover`: the worker's path, which applies those same rules
  in fewer round trips. `dispatch`: what the scheduler may start. `leases`: a running step's heartbeat,
  log and checkpoint, and the leases that have run out.

docs/architecture.md draws how they fit together.
"""
