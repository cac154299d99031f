"""`scheduler.db.WriteLock`: jobctl's SQLite writers queue on a lock file, across processes - a forked child
included, which must not share its parent's lock - and across the threads of one process. And the connection
each thread keeps for the statements that stand alone on PostgreSQL."""

from __future__ import annotations

import gc
import os
import select
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from jobctl.scheduler.store.db import Database, WriteLock
from jobctl.workers.services import Services


def _waits_for(lock: WriteLock) -> tuple[int, int]:
    """Fork a child that takes `lock` and then writes to a pipe; the pipe's read end and the child's pid."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read)
            with lock.held():
                os.write(write, b"x")
        finally:
            os._exit(0)
    os.close(write)
    return read, pid


def test_a_forked_child_waits_for_its_parents_lock(tmp_path: Path) -> None:
    lock = WriteLock(str(tmp_path / "db-writers.lock"))
    with lock.held():
        read, pid = _waits_for(lock)
        ready, _, _ = select.select([read], [], [], 0.3)
        assert not ready, "the child took the lock its parent holds"
    ready, _, _ = select.select([read], [], [], 10)
    assert ready and os.read(read, 1) == b"x"
    os.waitpid(pid, 0)


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    lock = WriteLock(str(tmp_path / "db-writers.lock"))
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(50):
            with lock.held():
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)  # a transaction's length: another thread would get in now
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_only_file_databases_queue(tmp_path: Path) -> None:
    assert Database(f"sqlite:///{tmp_path / 'x.db'}")._queue is not None
    assert Database("sqlite://")._queue is None


# -- statements that stand alone run on the calling thread's own connection (PostgreSQL) ----------------------


def _backend(db: Database) -> int:
    return int(db.query(lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()))


def test_a_thread_keeps_its_connection_and_threads_do_not_share_one(services: Services) -> None:
    if services.db.is_sqlite:
        pytest.skip("SQLite's statements outside a transaction take a pooled connection")
    db = services.db
    mine = _backend(db)
    assert _backend(db) == mine
    with db.autocommit_core() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == mine
        assert _backend(db) != mine  # nested: one of the pool's, not the one in use
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.append(_backend(db)))
    thread.start()
    thread.join()
    assert other and other[0] != mine
    assert _backend(db) == mine
    del thread
    gc.collect()  # the ended thread's connection is closed with it

    def alive(pid: int) -> bool:
        return bool(db.query(lambda c: c.execute(text(_ALIVE), {"pid": pid}).scalar()))

    deadline = time.monotonic() + 10
    while alive(other[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(other[0]) and alive(mine)


_ALIVE = "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"


def test_a_forked_child_opens_its_own_and_leaves_its_parents_alone(services: Services) -> None:
    if services.db.is_sqlite:
        pytest.skip("SQLite's statements outside a transaction take a pooled connection")
    db = services.db
    mine = _backend(db)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read)
            os.write(write, str(_backend(db)).encode())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 30)
    assert ready
    child = int(os.read(read, 32) or b"0")
    os.waitpid(pid, 0)
    assert child and child != mine
    assert _backend(db) == mine  # the parent's connection still answers: the child did not close it
