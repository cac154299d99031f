"""`scheduler.prepared`: statements run on the driver's cursor convert values as the ORM does, and fail as
`Connection.execute` fails (wrapped, and a lost connection invalidated so that the caller may retry). On
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from jobctl.scheduler.store import accounts, models
from jobctl.scheduler.store.db import Database
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


def test_a_one_statement_read_sees_what_is_committed_and_holds_no_transaction(services: Services) -> None:
    name = f"prep-query-{datetime.now(UTC).timestamp()}"
    assert services.db.query(lambda conn: _READ.fetch(conn, {"name": name})) == []
    with services.db.write() as s:
        accounts.create_project(s, name, None)
    assert len(services.db.query(lambda conn: _READ.fetch(conn, {"name": name}))) == 1
    if services.settings.database_url.startswith("postgresql"):  # autocommit: nothing left open on the server
        status = services.db.query(lambda conn: conn.connection.dbapi_connection.info.transaction_status)  # type: ignore[union-attr]
        assert status.name == "IDLE"


def test_a_one_statement_read_runs_again_once_on_a_lost_connection(services: Services) -> None:
    if not services.settings.database_url.startswith("postgresql"):
        pytest.skip("a server-side disconnect needs PostgreSQL")
    services.db._hot.dispose()  # so that the one connection opened next is the one the read gets again
    pid = services.db.query(lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    with services.db.engine.connect() as admin:  # the hot pool's idle connection, killed behind its back
        assert admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()
    calls = []

    def read(conn: object) -> list[object]:
        calls.append(conn)
        return list(_READ.fetch(conn, {"name": "none"}))  # type: ignore[arg-type]

    assert services.db.query(read) == []
    assert len(calls) == 2


def test_a_user_and_their_roles_are_read_in_one_statement(services: Services) -> None:
    stamp = datetime.now(UTC).timestamp()
    with services.db.write() as s:
        a = accounts.create_project(s, f"roles-a-{stamp}", None)
        b = accounts.create_project(s, f"roles-b-{stamp}", None)
        user = accounts.create_user(s, f"roles-u-{stamp}", f"hash-{stamp}", admin=False)
        lonely = accounts.create_user(s, f"roles-l-{stamp}", f"hash-l-{stamp}", admin=True)
        accounts.set_roles(s, user, {a.name: "viewer", b.name: "operator"})
    got = services.db.query(lambda conn: accounts.user_by_token_hash(conn, f"hash-{stamp}"))
    assert got is not None and (got.id, got.admin, got.roles) == (user, False, {a.name: "viewer", b.name: "operator"})
    alone = services.db.query(lambda conn: accounts.user_by_token_hash(conn, f"hash-l-{stamp}"))
    assert alone is not None and (alone.id, alone.admin, alone.roles) == (lonely, True, {})
    assert services.db.query(lambda conn: accounts.user_by_token_hash(conn, "no such hash")) is None


def _kill(services: Services, pid: int) -> None:
    with services.db.engine.connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()


def test_a_write_runs_again_once_when_its_connection_was_lost_before_the_commit(services: Services) -> None:
    if not services.settings.database_url.startswith("postgresql"):
        pytest.skip("a server-side disconnect needs PostgreSQL")
    services.db._hot.dispose()  # so that the one connection opened next is the one the write gets again
    _kill(services, services.db.transact(lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()))
    name = f"prep-transact-{datetime.now(UTC).timestamp()}"
    calls = []

    def work(conn: Connection) -> str:
        calls.append(conn)
        with Database.session_on(conn) as s:
            return accounts.create_project(s, name, None).name

    assert services.db.transact(work) == name
    assert len(calls) == 2
    with services.db.read() as s:
        assert len(accounts.list_projects(s, [name])) == 1


def test_a_write_whose_commit_was_lost_is_not_run_again(services: Services) -> None:
    if not services.settings.database_url.startswith("postgresql"):
        pytest.skip("a server-side disconnect needs PostgreSQL")
    calls = []

    def work(conn: Connection) -> None:
        calls.append(conn)
        _kill(services, int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0))

    with pytest.raises(DBAPIError) as raised:
        services.db.transact(work)
    assert raised.value.connection_invalidated and len(calls) == 1
