"""A durable peer: procrastinate, a PostgreSQL-native job queue. A job is a chain of 5 tasks, each deferring the
next when it runs; the connection string comes from `BENCH_PROCRASTINATE_DSN`.

Started by the benchmark as `procrastinate --app=jobctl.bench.peer_procrastinate.app worker --concurrency N`.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

LINKS = 5

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", "postgresql:///postgres")))


@app.task(name="link")
async def link(run: str, n: int) -> None:
    """Link `n` (1-based) of a chain of `run`; defers link `n + 1` until the chain has `LINKS` links."""
    if n < LINKS:
        await link.defer_async(run=run, n=n + 1)
