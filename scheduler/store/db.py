"""Engines and transactions. The caller owns the transaction: `with db.write() as s: ...`.

SQLite: WAL, a busy timeout, foreign keys on, and `BEGIN IMMEDIATE` for write transactions so that a
read-then-write transaction never fails half-way with SQLITE_BUSY_SNAPSHOT. jobctl's own writers queue for
the write lock on a lock file next to the database (`WriteLock`) before they ask SQLite for it. PostgreSQL:
READ COMMITTED with row locks taken by the store where a decision depends on what was read.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

T = TypeVar("T")


class Database:
    """One engine and the two kinds of transaction jobctl uses."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # `pool_size` connections are kept; up to 10 more are opened when needed and closed on return. On SQLite
        # too: opening one costs its PRAGMAs, and with the default 5 a busy API process kept opening them.
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": pool_size, "max_overflow": 10}
        if self.is_sqlite and make_url(url).database in (None, "", ":memory:"):
            kwargs = {"pool_pre_ping": True}  # one in-memory database per connection: SQLAlchemy's own pool for it
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_recycle"] = 300
        self.engine: Engine = create_engine(url, **kwargs)
        # The hot path's own pool, without the ping before every transaction (a round trip on PostgreSQL):
        # its callers retry a transaction whose connection turns out to be lost (`retry_disconnects`).
        self._hot: Engine = create_engine(url, **{**kwargs, "pool_pre_ping": False})
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            _configure_sqlite(self._hot)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(jobctl_write=True), expire_on_commit=False)
        self._write_hot = self._hot.execution_options(jobctl_write=True)
        path = self.engine.url.database if self.is_sqlite else None
        # SQLite is left to the pool: a statement whose result was not read to its end keeps its connection's
        # read snapshot open, and only the reset of a pooled connection's return ends it.
        self._pinned = _Pinned(self._hot, None if self.is_sqlite else url)
        self._queue = WriteLock(f"{path}-writers.lock") if path and path != ":memory:" else None

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, committed on success and rolled back on any exception."""
        with self._queued(), self._write.begin() as session:
            yield session

    @contextmanager
    def write_core(self) -> Iterator[Connection]:
        """A write transaction on a Core connection (no ORM session), for the per-step hot path: committed on
        success and rolled back on any exception. Its connection is not pinged first: a lost one fails the
        transaction with `connection_invalidated` set, and the caller retries (`retry_disconnects`)."""
        with self._queued(), self._write_hot.begin() as conn:
            yield conn

    def transact(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` in a `write_core` transaction, committed on success. Its connection is not pinged first:
        if it turns out to be lost before the commit is sent (nothing can have been written), `work` runs once
        more on a new one. A connection lost at the commit itself is raised: the commit may have landed."""
        return _again_if_lost(self.write_core, work)

    @contextmanager
    def autocommit_core(self) -> Iterator[Connection]:
        """PostgreSQL: a Core connection outside any transaction, where each statement commits by itself (a
        statement and its commit are one round trip): the calling thread's own (`_Pinned`). Not pinged first, as
        `write_core`. Not for SQLite (its statements outside a transaction are `query`'s)."""
        with self._queued(), self._pinned.held() as conn:
            yield conn

    def once(self, work: Callable[[Connection], T]) -> T:
        """PostgreSQL: `work(conn)` on an `autocommit_core` connection, for work that is one statement committing by
        itself. If the connection turns out to be lost, `work` runs once more on a new one - whether or not the
        first run's statement landed, so `work` must be safe to run twice (it finds out what the first run did)."""
        return _again_if_lost(self.autocommit_core, work)

    def query(self, read: Callable[[Connection], T]) -> T:
        """`read(conn)` outside any transaction: each statement is its own snapshot, and on PostgreSQL a statement
        and its commit are one round trip (no BEGIN, no ROLLBACK, no ping). For reads that stand alone statement
        by statement, run with `Prepared.fetch` (on the driver's cursor). The connection is the hot path's, not
        pinged first: if it turns out to be lost, `read` runs once more on a new one."""
        return _again_if_lost(self._pinned.held, read)

    @staticmethod
    def session_on(conn: Connection) -> Session:
        """An ORM session in `conn`'s transaction (for the ORM's general path inside a Core transaction); closing
        it leaves the transaction alone."""
        return Session(bind=conn)

    def _queued(self) -> contextlib.AbstractContextManager[None]:
        return self._queue.held() if self._queue is not None else contextlib.nullcontext()

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
        self._pinned.close()
        self.engine.dispose()
        self._hot.dispose()


def _again_if_lost(
    connect: Callable[[], contextlib.AbstractContextManager[Connection]], work: Callable[[Connection], T]
) -> T:
    """`work` on a connection from `connect`; once more on a new one if the connection turned out to be lost while
    `work` ran. A loss when the connection is given back (a commit) is raised, as is a second loss."""
    for tried in (1, 2):
        lost_in_work = False
        try:
            with connect() as conn:
                try:
                    result = work(conn)
                except DBAPIError as exc:
                    lost_in_work = exc.connection_invalidated
                    raise
            return result
        except DBAPIError:
            if not lost_in_work or tried == 2:
                raise
    raise AssertionError("unreachable")


class _Pinned:
    """A connection kept by each thread, outside any transaction, for statements that stand alone
    (`Database.query`, and `Database.autocommit_core` on PostgreSQL, in autocommit mode): taking a connection
    from the pool and giving it back (the reset, the isolation level set and restored) cost a worker process
    about a tenth of its time, more than the statement it ran.

    A thread's connection is opened on its first use, outside the pool (it never takes a pooled connection from
    a transaction), and closed when the thread ends or at `close`. One that turns out to be lost is
    invalidated by SQLAlchemy and replaced on the thread's next use. A nested use in the same thread takes a
    connection from the pool (`fallback`). A forked child opens its own: its copies of the parent's are left
    alone, never used or closed (their sockets are the parent's). Without a `url` (SQLite), every use takes one
    of the pool's, as it is."""

    def __init__(self, fallback: Engine, url: str | None) -> None:
        self._engine = create_engine(url, poolclass=NullPool) if url is not None else None
        self._fallback = fallback
        self._local = threading.local()
        self._open: dict[int, Connection] = {}  # every thread's, by id(), for `close`
        self._inherited: dict[int, Connection] = {}  # a forked child's copies of its parent's
        self._lock = threading.Lock()
        self._pid = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    @property
    def engine(self) -> Engine | None:
        """Where the pinned connections come from (None: every use takes one of the pool's)."""
        return self._engine

    @contextmanager
    def held(self) -> Iterator[Connection]:
        """The calling thread's connection for the duration of the block."""
        local = self._local
        if self._engine is None or getattr(local, "busy", False):
            with self._fallback.connect() as pooled:
                yield self._ready(pooled)
            return
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = self._ready(self._engine.connect())
            with self._lock:
                self._open[id(conn)] = conn
            weakref.finalize(threading.current_thread(), self._release, conn, self._pid)
        local.busy = True
        try:
            yield conn
        finally:
            local.busy = False
            if conn.invalidated:  # lost: the next use opens another
                local.conn = None
                self._release(conn, self._pid)
            elif conn.in_transaction():  # SQLAlchemy's own bookkeeping (autocommit: nothing to roll back)
                conn.rollback()

    def _ready(self, conn: Connection) -> Connection:
        # Pinning is PostgreSQL's, in autocommit mode. SQLite's driver connections are in autocommit already
        # (jobctl emits BEGIN itself): the isolation level's reset on a pooled connection's return would change that.
        return conn.execution_options(isolation_level="AUTOCOMMIT") if self._engine is not None else conn

    def _release(self, conn: Connection, pid: int) -> None:
        """Close `conn` - unless it was opened by another process (this is a forked child, and it is the
        parent's) - when its thread has ended, it was lost, or at `close`."""
        if pid != os.getpid():
            return
        with self._lock:
            self._open.pop(id(conn), None)
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        """Close every thread's connection (at shutdown: a thread using its own meanwhile would see it closed)."""
        with self._lock:
            pinned = list(self._open.values())
        for conn in pinned:
            self._release(conn, self._pid)
        if self._engine is not None:
            self._engine.dispose()

    def _forked(self) -> None:
        self._inherited = self._open  # kept referenced: collecting one would close the parent's socket
        self._open = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pid = os.getpid()


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


class WriteLock:
    """SQLite's write lock, handed from one jobctl writer to the next by the kernel.

    SQLite makes a writer that finds the database locked sleep and retry (1, 2, 5, 10 ms ...), so with
    transactions a few tenths of a millisecond long, two busy processes spend most of their time asleep while
    the lock is free. Taking an exclusive `flock` on a file next to the database first queues jobctl's
    writers in the kernel, which wakes the next one the moment the lock is let go; SQLite's own lock and busy
    timeout still guard against every other writer. Held by one thread of a process at a time; a forked
    child opens the file anew (a lock on an inherited descriptor would be shared with its parent)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd = -1  # opened on first use
        os.register_at_fork(after_in_child=self._forked)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the duration of the block."""
        with self._threads:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _forked(self) -> None:
        """In a forked child: a lock of its own and a file of its own (closing the inherited descriptor does not
        release a lock its parent holds: the parent's descriptor still refers to it)."""
        self._threads = threading.Lock()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
