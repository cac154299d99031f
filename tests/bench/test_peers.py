"""The peers start, run chains to completion and leave nothing behind: the durable ones drop their PostgreSQL
database, Dramatiq (Redis only, no PostgreSQL needed) leaves its Redis database empty."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from jobctl.bench import env, peers
from jobctl.bench.procs import Procs
from jobctl.redis_probe import redis_answers
from tests.conftest import missing

pytestmark = pytest.mark.timeout(120)


def _databases(kind: str) -> set[str]:
    """The databases of `kind`'s peer (`bench_<kind>_...`): other tests may create theirs meanwhile (xdist)."""
    engine = sa.create_engine(env.PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            names = {row[0] for row in conn.exec_driver_sql("SELECT datname FROM pg_database")}
            return {name for name in names if name.startswith(f"bench_{kind}_")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["celery", "procrastinate", "dramatiq"])
def test_a_peer_runs_its_chains_and_drops_its_database(kind: str, tmp_path: Path) -> None:
    if not redis_answers(env.REDIS_BASE):
        missing(f"Redis at {env.REDIS_BASE}")
    durable = kind != "dramatiq"  # the durable peers need PostgreSQL and create a database of their own
    before: set[str] = set()
    if durable:
        try:
            before = _databases(kind)
        except sa.exc.OperationalError:
            missing(f"PostgreSQL at {env.PG_ADMIN_URL}")
    with Procs(tmp_path) as procs:
        side: peers.DurableCelerySide | peers.ProcrastinateSide | peers.DramatiqSide
        if kind == "celery":
            side = peers.DurableCelerySide(procs, env.PG_ADMIN_URL, env.REDIS_BASE, 2)
        elif kind == "procrastinate":
            side = peers.ProcrastinateSide(procs, env.PG_ADMIN_URL, 2)
        else:
            side = peers.DramatiqSide(procs, env.REDIS_BASE, 2)
        try:
            if durable:
                assert len(_databases(kind) - before) == 1
            assert side.round(3, timeout=60) > 0
            assert side.how
        finally:
            side.close()
        assert procs.started == []
    if durable:
        assert _databases(kind) - before == set()
    else:
        client = redis.Redis.from_url(f"{env.REDIS_BASE}/{peers.DRAMATIQ_REDIS_DB}")
        try:
            assert client.dbsize() == 0
        finally:
            client.close()
