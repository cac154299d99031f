"""Self-fencing on one machine (`workers.selffence`): the pool process's lease clock and its record, and the main
process's watchdog acting on real child processes - the stop signal at the armed instant, the kill after the
grace, nothing for an attempt renewed in time or a process that is not its child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobctl.scheduler.settings import Settings
from jobctl.workers import runners, selffence

GRACE_S = 0.4

# A stand-in pool process: registers an attempt, arms its record `due_in` seconds ahead, then sleeps. `cooperate`
# exits on the stop signal (after noting when it came), `ignore` ignores it (and has a child of its own in another
# process group, which must die with it), `renew` arms its record again every 50 ms, as renewals would.
CHILD = """
import os, signal, subprocess, sys, time
from jobctl.workers import runners
mode, due_in, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
record = runners.Registration()
record.set("attempt-1")
def on_stop(signum, frame):
    with open(out, "a") as f:
        f.write(f"{time.monotonic()}\\n")
    sys.exit(0)
signal.signal(signal.SIGUSR2, signal.SIG_IGN if mode == "ignore" else on_stop)
if mode == "ignore":
    child = subprocess.Popen(["sleep", "600"], start_new_session=True)
    with open(out + ".child", "w") as f:
        f.write(str(child.pid))
record.arm(time.monotonic() + due_in)
print("armed", time.monotonic(), flush=True)
while True:
    time.sleep(0.05)
    if mode == "renew":
        record.arm(time.monotonic() + due_in)
"""


@pytest.fixture
def main_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """This test process plays the worker's main process; its records live under `tmp_path`."""
    monkeypatch.setattr(runners.tempfile, "gettempdir", lambda: str(tmp_path))
    yield os.getpid()
    runners.remove(os.getpid())


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[Callable[[str, float], tuple[subprocess.Popen[str], float]]]:
    """Start a stand-in pool process; returns it and the monotonic time its record is due."""
    started: list[subprocess.Popen[str]] = []

    def start(mode: str, due_in: float) -> tuple[subprocess.Popen[str], float]:
        env = {**os.environ, "TMPDIR": str(tmp_path)}
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, str(due_in), str(tmp_path / "signalled")],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().split()  # waits until the record is armed
        assert line and line[0] == "armed", line
        return proc, float(line[1]) + due_in

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _wait(proc: subprocess.Popen[str], timeout: float) -> float:
    """Wait for `proc` to exit; the monotonic time it was seen gone."""
    proc.wait(timeout=timeout)
    return time.monotonic()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", "rb") as stat:  # a zombie (our own unreaped child) is dead too
        return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"


def test_the_lease_clock_arms_the_record_while_the_code_runs(main_pid: int) -> None:
    parent = os.getppid()  # a Registration files itself under its parent, as a pool process under its worker
    record = runners.Registration()
    record.set("attempt-1")
    now = time.monotonic()
    clock = selffence.LeaseClock(record, deadline_s=5.0, leased_at=now)
    assert runners.armed(parent) == []  # registered, but its code does not run yet
    clock.arm()
    assert runners.armed(parent) == [(os.getpid(), "attempt-1", pytest.approx(now + 5.0))]
    clock.renewed(now - 1.0)  # an older renewal landing late changes nothing
    clock.renewed(now + 1.5)
    assert runners.armed(parent) == [(os.getpid(), "attempt-1", pytest.approx(now + 6.5))]
    assert not clock.overdue()
    clock.disarm()
    assert runners.armed(parent) == []
    record.clear()
    runners.remove(parent)


def test_overdue_fences_for_good_and_only_while_armed(main_pid: int) -> None:
    parent = os.getppid()  # a Registration files itself under its parent, as a pool process under its worker
    record = runners.Registration()
    record.set("attempt-1")
    clock = selffence.LeaseClock(record, deadline_s=0.2, leased_at=time.monotonic() - 1.0)
    assert not clock.overdue()  # not armed: the code does not run
    assert clock.arm() and clock.before_start  # leased too long ago already: the code must not start
    assert clock.overdue() and clock.fenced_after is not None and clock.fenced_after >= 1.0
    clock.renewed(time.monotonic())  # a renewal landing after the decision does not undo it, nor re-arm
    assert clock.overdue()
    assert runners.armed(parent)[0][2] < time.monotonic()
    assert not selffence.LeaseClock(record, deadline_s=5.0, leased_at=time.monotonic()).arm()
    runners.remove(parent)


def test_a_due_attempt_is_signalled_at_once_and_not_killed_if_it_unwinds(
    main_pid: int, pool: Callable[[str, float], tuple[subprocess.Popen[str], float]], tmp_path: Path
) -> None:
    watchdog = selffence.Watchdog(main_pid, deadline_s=0.3, grace_s=GRACE_S)
    watchdog.start()
    try:
        proc, due = pool("cooperate", 0.3)
        gone = _wait(proc, timeout=10)
    finally:
        watchdog.stop()
    signalled = float((tmp_path / "signalled").read_text().split()[0])
    assert due <= signalled <= due + selffence.WATCH_S + 0.3  # the watch period, and a loaded machine's slack
    assert proc.returncode == 0  # it exited on the signal: not killed
    assert gone - due < GRACE_S + 1.0


def test_an_attempt_that_ignores_the_stop_is_killed_with_its_children_after_the_grace(
    main_pid: int, pool: Callable[[str, float], tuple[subprocess.Popen[str], float]], tmp_path: Path
) -> None:
    watchdog = selffence.Watchdog(main_pid, deadline_s=0.3, grace_s=GRACE_S)
    watchdog.start()
    try:
        proc, due = pool("ignore", 0.3)
        gone = _wait(proc, timeout=10)
    finally:
        watchdog.stop()
    assert proc.returncode == -signal.SIGKILL
    assert due + GRACE_S <= gone <= due + GRACE_S + 2 * selffence.WATCH_S + 0.5
    grandchild = int((tmp_path / "signalled.child").read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild):
        assert time.monotonic() < deadline, "the attempt's own child outlived it"
        time.sleep(0.02)
    assert runners.armed(main_pid) == []  # its record is forgotten


def test_an_attempt_renewed_in_time_is_left_alone(
    main_pid: int, pool: Callable[[str, float], tuple[subprocess.Popen[str], float]], tmp_path: Path
) -> None:
    watchdog = selffence.Watchdog(main_pid, deadline_s=0.3, grace_s=GRACE_S)
    proc, _ = pool("renew", 0.3)
    until = time.monotonic() + 1.5
    while time.monotonic() < until:  # five deadlines' worth of passes
        watchdog.check(time.monotonic())
        time.sleep(selffence.WATCH_S)
    assert proc.poll() is None
    assert not (tmp_path / "signalled").exists()


def test_a_record_of_a_process_that_is_not_a_pool_process_is_dropped(main_pid: int) -> None:
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        folder = runners.directory(os.getppid())  # filed under another "main process": not its child
        folder.mkdir(exist_ok=True)
        (folder / str(stranger.pid)).write_bytes(b"attempt-1".ljust(runners.WIDTH) + b"1.0")
        watchdog = selffence.Watchdog(os.getppid(), deadline_s=0.3, grace_s=0.0)
        watchdog.check(time.monotonic())
        watchdog.check(time.monotonic())
        assert stranger.poll() is None
        assert runners.armed(os.getppid()) == []
    finally:
        stranger.kill()
        stranger.wait()
        runners.remove(os.getppid())


def test_the_latest_stop_and_the_settings_rule() -> None:
    settings = Settings(lease_s=15, stop_grace_s=1)
    assert settings.self_fence_deadline_s == 7.5  # unset: half the lease
    assert selffence.latest_stop_s(settings) == pytest.approx(7.5 + 1 + 2 * selffence.WATCH_S)
    assert Settings(lease_s=15, stop_grace_s=1, self_fence_s=10).self_fence_deadline_s == 10
    with pytest.raises(ValueError, match="JOBCTL_STOP_GRACE_S"):
        Settings(lease_s=15, stop_grace_s=1, self_fence_s=14)
