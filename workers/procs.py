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
from pathlib import Path


def children(pid: int) -> list[int]:
    """The direct children of `pid` (every thread's), or [] if it is gone or `/proc` cannot tell."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before their children."""
    found: list[int] = []
    frontier = children(pid)
    while frontier:
        found.extend(frontier)
        frontier = [c for p in frontier for c in children(p)]
    return found


def kill_descendants(pid: int) -> list[int]:
    """SIGKILL every descendant of `pid` and reap the ones that are our own children. Returns the pids killed."""
    own = children(pid) if pid == os.getpid() else []
    victims = descendants(pid)
    for victim in victims:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    for child in own:  # SIGKILL cannot be caught: each wait returns at once
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)
    return victims
