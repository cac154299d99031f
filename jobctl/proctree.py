"""The processes of this machine as a tree, read from Linux's `/proc`: which processes are below a given one.

Used where a whole family must be found at once: `jobctl up` kills what is left below its children
(jobctl/cli/supervisor.py), the benchmark adds up a worker's memory (bench/procs.py). It reads every
`/proc/<pid>/stat` for the parent pid, so it also works where `/proc/<pid>/task/<tid>/children` is missing.
Imports nothing of jobctl.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path


def process_tree() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process on this machine now (empty where there is no `/proc`)."""
    tree: dict[int, list[int]] = {}
    try:
        entries = [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:
        return tree
    for name in entries:
        with contextlib.suppress(OSError, IndexError, ValueError):  # gone meanwhile
            stat = Path("/proc", name, "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])  # fields after "(comm)": state, ppid, ...
            tree.setdefault(ppid, []).append(int(name))
    return tree


def descendants(pid: int, tree: Mapping[int, list[int]]) -> list[int]:
    """Every process below `pid` in `tree` (from `process_tree()`), `pid` itself not included."""
    found, todo = [], list(tree.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found
