"""Which attempt each pool process of a worker runs now: one small file per pool process, in a directory of the
worker's main process.

A pool process writes the fence of the attempt it is about to run before the step's code starts, and clears it
once the attempt is stopped or its task ends. The worker's main process reads it to find the process running
an inline attempt (one that no Celery request carries) and, before killing a process, whether it still runs
the attempt (`workers.control`). Both sides are on one machine, so a local write is enough: no round trip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

WIDTH = 64  # bytes per record: a fence (a UUID) padded with spaces, written in one pwrite at offset 0


def directory(main_pid: int) -> Path:
    """The directory of the worker whose main process is `main_pid`."""
    return Path(tempfile.gettempdir()) / f"jobctl-runners-{main_pid}"


class Registration:
    """The record of the calling pool process (created empty: a process that reuses a dead one's pid never
    inherits its attempt)."""

    def __init__(self) -> None:
        folder = directory(os.getppid())
        folder.mkdir(mode=0o700, exist_ok=True)
        self._fd = os.open(folder / str(os.getpid()), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def set(self, fence: str) -> None:
        """This process runs attempt `fence` from now on."""
        os.pwrite(self._fd, fence.encode().ljust(WIDTH), 0)

    def clear(self) -> None:
        """This process runs no attempt."""
        os.pwrite(self._fd, b" " * WIDTH, 0)


def running(main_pid: int, pid: int) -> str | None:
    """The attempt that pool process `pid` of the worker `main_pid` registered as the one it runs; None if it
    runs none (or never registered)."""
    try:
        with open(directory(main_pid) / str(pid), "rb") as record:
            fence = record.read(WIDTH).strip().decode()
    except (OSError, UnicodeDecodeError):
        return None
    return fence or None


def forget(main_pid: int, pid: int) -> None:
    """Drop the record of pool process `pid` (it was killed)."""
    with contextlib.suppress(OSError):
        (directory(main_pid) / str(pid)).unlink()


def remove(main_pid: int) -> None:
    """Drop the worker's directory (its main process shuts down)."""
    shutil.rmtree(directory(main_pid), ignore_errors=True)


def sweep() -> int:
    """Drop the directories of workers whose main process is gone (killed, so it could not `remove` its own);
    how many. Called when a worker starts."""
    removed = 0
    for folder in directory(0).parent.glob("jobctl-runners-*"):
        pid = folder.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True
