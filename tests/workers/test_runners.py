"""The per-process record of the attempt a pool process runs, as the worker's main process reads it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from jobctl.workers import runners


@pytest.fixture
def main_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(runners.tempfile, "gettempdir", lambda: str(tmp_path))
    return os.getppid()  # a Registration files itself under its parent, as a pool process under the worker


def test_set_clear_and_forget(main_pid: int) -> None:
    record = runners.Registration()
    assert runners.running(main_pid, os.getpid()) is None
    fence, shorter = str(uuid.uuid4()), uuid.uuid4().hex[:8]
    record.set(fence)
    assert runners.running(main_pid, os.getpid()) == fence
    record.set(shorter)  # a shorter value replaces the longer one whole
    assert runners.running(main_pid, os.getpid()) == shorter
    record.clear()
    assert runners.running(main_pid, os.getpid()) is None
    record.set(fence)
    runners.forget(main_pid, os.getpid())
    assert runners.running(main_pid, os.getpid()) is None
    runners.remove(main_pid)
    assert not runners.directory(main_pid).exists()


def test_a_new_process_with_a_reused_pid_starts_empty(main_pid: int) -> None:
    runners.Registration().set(str(uuid.uuid4()))
    runners.Registration()  # what a new pool process that got the same pid does first
    assert runners.running(main_pid, os.getpid()) is None


def test_unknown_process_runs_nothing(main_pid: int) -> None:
    assert runners.running(main_pid, 999_999_999) is None


def test_sweep_drops_only_the_directories_of_dead_workers(main_pid: int) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)  # a pid whose process has exited
    runners.directory(dead).mkdir()
    (runners.directory(dead) / "123").write_bytes(b"fence")
    runners.Registration().set("mine")  # under this test's parent, alive
    assert runners.sweep() == 1
    assert not runners.directory(dead).exists()
    assert runners.running(main_pid, os.getpid()) == "mine"
