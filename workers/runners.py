"""Which attempt each pool process of a worker runs now: one small file per pool process, in a directory of the
worker's main process.

A pool process writes the fence of the attempt it is about to run before the step's code starts, and clears it
once the attempt is stopped or its task ends. The worker's main process reads it to find the process running
an inline attempt (one that no Celery request carries) and, before killing a process, whether it still runs
the attempt (`workers.control`). Both sides are on one machine, so a local write is enough: no round trip.

While the step's code runs, the record also holds its self-fence time: the monotonic instant (`time.monotonic`,
one clock for every process of the machine) by which the attempt's lease must have been renewed, else the main
process stops the attempt (`workers.selffence`, docs/reliability.md "Several hosts").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

WIDTH = 64  # bytes per record: a fence (a UUID) padded with spaces, written in one pwrite at offset 0
DUE_WIDTH = 24  # then the self-fence time, a decimal number padded with spaces (blank: not armed)


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
        os.pwrite(self._fd, b" " * (WIDTH + DUE_WIDTH), 0)

    def arm(self, due: float) -> None:
        """The attempt's code runs, and must be stopped at monotonic time `due` unless armed again later."""
        os.pwrite(self._fd, f"{due:.6f}".encode().ljust(DUE_WIDTH), WIDTH)

    def disarm(self) -> None:
        """The attempt's code no longer runs: nothing to stop."""
        os.pwrite(self._fd, b" " * DUE_WIDTH, WIDTH)


def running(main_pid: int, pid: int) -> str | None:
    """The attempt that pool process `pid` of the worker `main_pid` registered as the one it runs; None if it
    runs none (or never registered)."""
    try:
        with open(directory(main_pid) / str(pid), "rb") as record:
            fence = record.read(WIDTH).strip().decode()
    except (OSError, UnicodeDecodeError):
        return None
    return fence or None


def armed(main_pid: int) -> list[tuple[int, str, float]]:
    """(pool process, attempt, self-fence time) of each pool process of the worker `main_pid` whose attempt's
    code runs now. A record being written while read is skipped this time."""
    found: list[tuple[int, str, float]] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory(main_pid)):
            if not entry.name.isdigit():
                continue
            try:
                with open(entry.path, "rb") as record:
                    raw = record.read(WIDTH + DUE_WIDTH)
                fence, due = raw[:WIDTH].strip().decode(), raw[WIDTH:].strip()
                if fence and due:
                    found.append((int(entry.name), fence, float(due)))
            except (OSError, UnicodeDecodeError, ValueError):
                continue
    return found


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
