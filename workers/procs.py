"""Process trees on Linux: the descendants of a process, and killing them.

A step may start children without `StepContext.spawn` (plain `subprocess.Popen`, a library that forks). They
must not outlive the attempt: the runtime kills what is left of this process's descendants when an attempt
ends, and the stop escalation kills the descendants of a pool process before the process itself. Where
`/proc` has no `children` files (not Linux), nothing is found and only registered process groups are killed.
"""

from __future__ import annotations

import contextlib
import os
import signal


def children(pid: int) -> list[int]:
    """The direct children of `pid` (every thread's), or [] if it is gone or `/proc` cannot tell. Called after
    every step: raw reads (9 us for three threads, against 22 us with text-mode `open`)."""
    found: list[int] = []
    base = f"/proc/{pid}/task"
    with contextlib.suppress(OSError):
        for task in os.listdir(base):
            with contextlib.suppress(OSError, ValueError):
                found.extend(int(c) for c in _read(f"{base}/{task}/children").split())
    return found


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before their children."""
    return _below(children(pid))


def _below(frontier: list[int]) -> list[int]:
    """These processes and every process below them, parents before their children."""
    found: list[int] = []
    while frontier:
        found.extend(frontier)
        frontier = [c for p in frontier for c in children(p)]
    return found


def kill_descendants(pid: int) -> list[int]:
    """SIGKILL every descendant of `pid` and reap the ones that are our own children. Returns the pids killed."""
    direct = children(pid)
    victims = _below(direct)
    for victim in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    for child in direct if pid == os.getpid() else []:  # SIGKILL cannot be caught: each wait returns at once
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)
    return victims
