"""jobctl/proctree.py: the processes below a pid, as `jobctl up` and the benchmark see them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from jobctl.proctree import descendants, process_tree


def test_descendants_walks_the_whole_tree_below_the_pid_only() -> None:
    tree = {1: [2, 3], 2: [4], 4: [5], 6: [7]}
    assert sorted(descendants(1, tree)) == [2, 3, 4, 5]
    assert descendants(2, tree) == [4, 5]
    assert descendants(5, tree) == []


def test_process_tree_finds_a_child_and_its_child_in_another_session() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("/proc is Linux's")
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'], start_new_session=True)\n"
        "print(p.pid, flush=True)\ntime.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    grandchild = None
    try:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        tree = process_tree()
        assert child.pid in tree[os.getpid()]
        assert descendants(child.pid, tree) == [grandchild]
    finally:
        if grandchild is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild, signal.SIGKILL)
        child.kill()
        child.wait()
