"""`scheduler.prepared`: statements run on the driver's cursor convert values as the ORM does, and fail as
`Connection.execute` fails (wrapped, and a lost connection invalidated so that the caller may retry). On
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from jobctl.scheduler.store import accounts, models
from jobctl.scheduler.store.prepared import Prepared
from jobctl.workers.services import Services

_READ = Prepared(
    select(models.Project.id, models.Project.name, models.Project.max_running, models.Project.created_at).where(
        models.Project.name == bindparam("name")
    )
)


def test_values_round_trip_as_the_orm_loads_them(services: Services) -> None:
    name = f"prep-{datetime.now(UTC).timestamp()}"
    with services.db.write() as s:
        made = accounts.create_project(s, name, 3)
    with services.db.write_core() as conn:
        rows = _READ.fetch(conn, {"name": name})
        read = _READ.reader(conn.dialect, ["id", "name", "max_running", "created_at"])(rows[0])
    with services.db.read() as s:
        orm = s.get(models.Project, made.id)
        assert orm is not None
        assert read == {"id": orm.id, "name": orm.name, "max_running": orm.max_running, "created_at": orm.created_at}
    assert read["created_at"].tzinfo is UTC


def test_a_refused_write_raises_sqlalchemys_error_and_changes_nothing(services: Services) -> None:
    name = f"prep-dup-{datetime.now(UTC).timestamp()}"
    with services.db.write() as s:
        accounts.create_project(s, name, None)
    insert = Prepared(models.Project.__table__.insert())  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError), services.db.write_core() as conn:
        insert.run(conn, {"id": None, "name": name, "max_running": None, "created_at": datetime.now(UTC)})
    with services.db.read() as s:
        assert len(accounts.list_projects(s, [name])) == 1


def test_a_lost_connection_is_invalidated_and_the_next_transaction_reconnects(services: Services) -> None:
    if not services.settings.database_url.startswith("postgresql"):
        pytest.skip("a server-side disconnect needs PostgreSQL")
    conn = services.db.engine.connect()
    try:
        transaction = conn.begin()
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with services.db.engine.connect() as admin:  # from another connection, once it is checked out
            assert admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()
        with pytest.raises(DBAPIError) as raised:
            _READ.fetch(conn, {"name": "none"})
        assert raised.value.connection_invalidated
        assert conn.invalidated
        transaction.rollback()
    finally:
        conn.close()
    with services.db.write_core() as again:
        assert _READ.fetch(again, {"name": "none"}) == []
