"""The children of `jobctl up` (docs/contract.md §5): started in their own sessions, their output prefixed with
their names, stopped together. One Ctrl-C or SIGTERM stops them all; when one dies on its own the others are
stopped too; what a child leaves below it (a worker's pool, a step's subprocesses, orphans) is killed with it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from rich.console import Console
from rich.text import Text

from jobctl.proctree import descendants, process_tree

console_lock = threading.Lock()  # whole lines on the terminal: the children's relays and `up`'s banner
COLORS = {"api": "cyan", "scheduler": "magenta", "worker": "green", "flower": "yellow", "redis": "red"}


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    service: bool  # started for the others (redis): stopped last
    reader: threading.Thread | None = None


@dataclass
class Supervisor:
    """Children started in their own process groups, their output prefixed with their names.

    `run()` waits until a stop is requested (signal or `request_stop()`) or a child exits on its own; `stop()`
    sends SIGTERM to every child, waits up to `grace_s`, then SIGKILLs what is left of each process group and
    every process below each child (so a worker's pool processes and the subprocesses of its steps go too).
    """

    out: Console
    grace_s: float = 10.0
    orphans_are_ours: bool = False  # every other child of this process is an orphan of ours: kill at stop
    children: list[Child] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _signals: int = 0

    def say(self, message: str, style: str = "bold") -> None:
        with console_lock:
            self.out.print(Text("jobctl    | ", style="bold") + Text(message, style=style), soft_wrap=True)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], *, service: bool = False) -> Child:
        """Start `argv` as the child `name` in a new session (a terminal's Ctrl-C reaches only us)."""
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name, process, service)
        assert process.stdout is not None
        child.reader = threading.Thread(target=self._relay, args=(name, process.stdout), daemon=True)
        child.reader.start()
        self.children.append(child)
        return child

    def _relay(self, name: str, stream: IO[bytes]) -> None:
        prefix = Text(f"{name:<9} | ", style=COLORS.get(name, "blue"))
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            with console_lock:
                self.out.print(prefix + Text(line), soft_wrap=True)
        stream.close()

    def failed(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((child for child in self.children if child.process.poll() is not None), None)

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def handling_signals(self) -> _SignalScope:
        """A context in which SIGINT and SIGTERM request a stop (a second one during the stop: kill now)."""
        return _SignalScope(self)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals += 1
        if self._signals == 1:
            self.say(f"got {signal.Signals(signum).name}, stopping everything (again to kill at once)", "yellow")
        self._stop.set()

    def run(self, ready: Callable[[], bool] = lambda: True, on_ready: Callable[[], None] = lambda: None) -> int:
        """Wait for a stop request (0) or a child's exit (1); calls `on_ready` once `ready()` holds."""
        announced = False
        next_check = 0.0
        while not self._stop.is_set():
            dead = self.failed()
            if dead is not None:
                self.say(f"{dead.name} {describe_exit(dead.process.returncode)} unexpectedly; stopping", "bold red")
                return 1
            if not announced and time.monotonic() >= next_check:
                if ready():
                    announced = True
                    on_ready()
                next_check = time.monotonic() + 0.5
            self._stop.wait(0.2)
        return 0

    def stop(self) -> None:
        """Stop every child: the services last. Safe to call more than once."""
        signals_before = self._signals
        for group in ([c for c in self.children if not c.service], [c for c in self.children if c.service]):
            self._stop_group(group, signals_before)
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2)
        self.children.clear()

    def _stop_group(self, group: list[Child], signals_before: int) -> None:
        for child in group:
            if child.process.poll() is None:
                _signal(child, signal.SIGTERM, whole_group=False)
        deadline = time.monotonic() + self.grace_s
        for child in group:
            # Another Ctrl-C while we wait means "kill now".
            while child.process.poll() is None and time.monotonic() < deadline and self._signals <= signals_before:
                time.sleep(0.05)
            if child.process.poll() is None:
                self.say(f"{child.name} did not stop in time; killing it", "yellow")
        # Kill what is left: each child's process group, and every process below it, including those that
        # left the group (a step's subprocess in its own session) or were orphaned to us (we are a subreaper).
        tree = process_tree()
        ours = {child.process.pid for child in self.children}
        adopt = self.orphans_are_ours and not any(child.service for child in group)
        orphans = [pid for pid in tree.get(os.getpid(), []) if pid not in ours] if adopt else []
        doomed = {pid for child in group for pid in descendants(child.process.pid, tree)}
        doomed |= {pid for orphan in orphans for pid in [orphan, *descendants(orphan, tree)]}
        for child in group:
            _signal(child, signal.SIGKILL, whole_group=True)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for child in group:
            child.process.wait()
        for orphan in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(orphan, 0)


def become_subreaper() -> bool:
    """Linux: processes orphaned below us are re-parented to us, not to init, so `stop()` finds them.

    Only for a process whose every child is the supervisor's (`jobctl up`): `stop()` then kills them all.
    """
    if not sys.platform.startswith("linux"):
        return False
    PR_SET_CHILD_SUBREAPER = 36
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def describe_exit(returncode: int) -> str:
    """`exited with status 3` or `was killed by SIGKILL`."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _signal(child: Child, signum: signal.Signals, *, whole_group: bool) -> None:
    try:
        if whole_group:
            os.killpg(child.process.pid, signum)  # the child leads its own group (start_new_session)
        else:
            child.process.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass


class _SignalScope:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.saved: dict[int, object] = {}

    def __enter__(self) -> Supervisor:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.saved[signum] = signal.signal(signum, self.supervisor._on_signal)
        return self.supervisor

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
