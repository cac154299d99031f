"""The supervisor behind `jobctl up` (jobctl/cli/supervisor.py): children started, relayed and stopped together,
with everything they leave below them."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from jobctl.cli.supervisor import Supervisor


@pytest.fixture(autouse=True)
def in_tmp_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test writes its pid files in its own working directory."""
    monkeypatch.chdir(tmp_path)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


SLEEPER = python("import time\nprint('ready', flush=True)\nwhile True: time.sleep(1)")
STUBBORN = python(
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
    "while True: time.sleep(1)"
)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return not sys.platform.startswith("linux")


def make_supervisor(grace_s: float = 5.0) -> tuple[Supervisor, io.StringIO]:
    out = io.StringIO()
    return Supervisor(Console(file=out, width=200, color_system=None), grace_s=grace_s), out


def test_supervisor_stops_every_child_on_request() -> None:
    supervisor, out = make_supervisor()
    children = [supervisor.start(name, SLEEPER, os.environ) for name in ("api", "worker")]
    children.append(supervisor.start("redis", SLEEPER, os.environ, service=True))
    threading.Timer(0.5, supervisor.request_stop).start()
    started = time.monotonic()
    assert supervisor.run() == 0
    supervisor.stop()
    assert time.monotonic() - started < 5
    assert all(child.process.returncode is not None for child in children)
    assert not any(alive(child.process.pid) for child in children)
    assert "api       | ready" in out.getvalue()
    assert "redis     | ready" in out.getvalue()


def test_supervisor_stops_everything_when_a_child_dies() -> None:
    supervisor, out = make_supervisor()
    sleeper = supervisor.start("api", SLEEPER, os.environ)
    supervisor.start("worker", python("import time, sys\ntime.sleep(0.3)\nsys.exit(3)"), os.environ)
    assert supervisor.run() == 1
    supervisor.stop()
    assert sleeper.process.returncode is not None
    assert "worker exited with status 3 unexpectedly; stopping" in out.getvalue()


def test_supervisor_kills_a_child_that_ignores_sigterm_and_its_own_children() -> None:
    supervisor, out = make_supervisor(grace_s=0.5)
    grandchild_pid = Path("grandchild.pid")
    spawner = python(
        "import signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(grandchild_pid)!r}, 'w').write(str(p.pid))\nprint('ready', flush=True)\n"
        "while True: time.sleep(1)"
    )
    child = supervisor.start("worker", spawner, os.environ)
    pid = wait_for_pid(grandchild_pid)
    supervisor.request_stop()
    assert supervisor.run() == 0
    supervisor.stop()
    assert child.process.returncode == -signal.SIGKILL
    assert "worker did not stop in time; killing it" in out.getvalue()
    assert wait_until_dead(pid)


def test_supervisor_kills_grandchildren_that_left_the_process_group() -> None:
    supervisor, _ = make_supervisor(grace_s=0.3)
    grandchild_pid = Path("grandchild.pid")
    spawner = python(
        "import signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
        f"open({str(grandchild_pid)!r}, 'w').write(str(p.pid))\n"
        "while True: time.sleep(1)"
    )
    supervisor.start("worker", spawner, os.environ)
    pid = wait_for_pid(grandchild_pid)
    supervisor.request_stop()
    supervisor.run()
    supervisor.stop()
    assert wait_until_dead(pid)


ORPHANING_UP = """
import io, sys
from pathlib import Path
from rich.console import Console
from jobctl.cli.supervisor import Supervisor, become_subreaper

supervisor = Supervisor(Console(file=io.StringIO()), grace_s=0.5, orphans_are_ours=become_subreaper())
code = "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], " \\
       "start_new_session=True); open(sys.argv[1], 'w').write(str(p.pid)); time.sleep(0.5)"
supervisor.start("worker", [sys.executable, "-c", code, sys.argv[1]], {})
status = supervisor.run()
supervisor.stop()
sys.exit(10 + status)
"""


def test_up_kills_what_a_dead_child_left_behind(tmp_path: Path) -> None:
    """A worker killed outright orphans its steps' subprocesses: `up` adopts them (subreaper) and kills them."""
    if not sys.platform.startswith("linux"):
        pytest.skip("subreapers are a Linux feature")
    grandchild_pid = tmp_path / "orphan.pid"
    result = subprocess.run(
        [sys.executable, "-c", ORPHANING_UP, str(grandchild_pid)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],  # the repository, so `jobctl` imports even without an install
    )
    assert result.returncode == 11, result.stderr  # run() saw the child die: 1
    assert wait_until_dead(int(grandchild_pid.read_text()))


def wait_for_pid(path: Path) -> int:
    deadline = time.monotonic() + 10
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(path.read_text())


def wait_until_dead(pid: int) -> bool:
    """Whether `pid` is gone within 5 s (a killed orphan of ours may take a moment to be reaped by init)."""
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_supervisor_announces_once_when_ready() -> None:
    supervisor, _ = make_supervisor()
    supervisor.start("api", SLEEPER, os.environ)
    calls: list[int] = []

    def on_ready() -> None:
        calls.append(1)
        threading.Timer(0.6, supervisor.request_stop).start()

    assert supervisor.run(ready=lambda: True, on_ready=on_ready) == 0
    supervisor.stop()
    assert calls == [1]


def test_sigint_requests_a_stop() -> None:
    supervisor, out = make_supervisor()
    child = supervisor.start("scheduler", STUBBORN, os.environ)
    with supervisor.handling_signals():
        threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT)).start()
        assert supervisor.run() == 0
        supervisor.grace_s = 0.3
        supervisor.stop()
    assert child.process.returncode is not None
    assert "got SIGINT, stopping everything" in out.getvalue()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
