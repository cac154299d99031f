"""Subprocesses the benchmark starts, each in its own process group, and always stops: `Procs` kills every
group it started on exit, on errors and on Ctrl-C/SIGTERM. It never touches a process it did not start."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TypeVar

from jobctl.proctree import descendants, process_tree

T = TypeVar("T")


class Procs:
    """Start commands in new sessions with their output in `log_dir`; stop them all on `close()`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._previous: object = None

    def __enter__(self) -> Procs:
        self._previous = signal.signal(signal.SIGTERM, _terminate)
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.close()
        signal.signal(signal.SIGTERM, self._previous)  # type: ignore[arg-type]

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `argv` in its own process group, output appended to `<log_dir>/<name>.log`."""
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            proc = subprocess.Popen(
                list(argv), env=dict(env or os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        self.started.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        """SIGTERM the process's group, SIGKILL it if it is still there after `timeout`, and reap it."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # pool processes left behind
            os.killpg(proc.pid, signal.SIGKILL)
        self.started = [(n, p) for n, p in self.started if p is not proc]

    def close(self) -> None:
        """Stop every process group started here, newest first."""
        for _, proc in reversed(list(self.started)):
            self.stop(proc)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.01) -> T:
    """Poll `predicate()` until it returns something truthy; `TimeoutError` naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def tree_rss_kib(pid: int) -> int:
    """Resident memory (KiB) of `pid` and all its descendants, from /proc."""
    total = 0
    for current in [pid, *descendants(pid, process_tree())]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total
