"""Engines and transactions. The caller owns the transaction: `with db.write() as s: ...`.

SQLite: WAL, a busy timeout, foreign keys on, and `BEGIN IMMEDIATE` for write transactions so that a
read-then-write transaction never fails half-way with SQLITE_BUSY_SNAPSHOT. PostgreSQL: READ COMMITTED with
row locks taken by the store where a decision depends on what was read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """One engine and the two kinds of transaction jobctl uses."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=10, pool_recycle=300)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(jobctl_write=True)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, committed on success and rolled back on any exception."""
        with self._write.begin() as session:
            yield session

    @contextmanager
    def write_core(self) -> Iterator[Connection]:
        """A write transaction on a Core connection (no ORM session: the hot path's `scheduler.handover`),
        committed on success and rolled back on any exception."""
        with self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (rolled back at the end)."""
        with self._read() as session:
            yield session
            session.rollback()

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("jobctl_write", False)
        # On the driver's connection: a BEGIN does not need SQLAlchemy's execution machinery around it.
        conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
