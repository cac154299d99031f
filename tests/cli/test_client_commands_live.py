"""`jobctl jobs ...` as a user runs it: separate processes talking to a real API server in front of the live system.

The bars `jobs watch` draws are fed by the API's event stream where it has one; the fallback fetches keep them
right either way. Output is piped (not a terminal), so Rich prints a line per change of status and the bars
once, as they ended.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import env_for
from tests.integration.system import System

pytestmark = pytest.mark.integration

STEP_S = 0.5


def jobctl(
    system: System, api_url: str, *args: str, timeout: float = 120, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `jobctl ARGS...` in a new process, as the admin (or the holder of `token`), against `api_url`; fail
    with its output so far and the system's logs if it takes longer than `timeout` seconds."""
    env = env_for(system.settings)
    env.update(JOBCTL_URL=api_url, JOBCTL_TOKEN=token or system.settings.admin_token or "", COLUMNS="120")
    argv = [sys.executable, "-m", "jobctl.cli", *args]
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        so_far = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        raise AssertionError(
            f"jobctl {' '.join(args)} ran over {timeout}s; its output:\n{so_far}\n{system.logs()}"
        ) from None


def submit_sleep(system: System, api_url: str, project: str, *params: str) -> str:
    pairs = [arg for p in ("steps=3", f"seconds={STEP_S}", *params) for arg in ("--param", p)]
    done = jobctl(system, api_url, "jobs", "submit", "--project", project, "--type", "sleep", *pairs)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", job_id), done.stdout
    return job_id


def assert_bars_full(output: str) -> None:
    for index in range(3):
        assert re.search(rf"^\s+{index} sleep-{index + 1}\s.*100%\s+FINISHED", output, re.MULTILINE), output
    assert re.search(r"^job \w{12} sleep\s.*100%\s+FINISHED", output, re.MULTILINE), output


def test_submit_then_watch_shows_every_step_reach_100_and_exits_0(system: System, api_url: str, project: str) -> None:
    job_id = submit_sleep(system, api_url, project)
    watched = jobctl(system, api_url, "jobs", "watch", job_id)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert_bars_full(watched.stdout)
    assert f"job {job_id} FINISHED" in watched.stdout
    assert system.job(job_id).status.value == "FINISHED"

    refused = jobctl(system, api_url, "jobs", "pause", job_id)
    assert refused.returncode != 0
    assert f"{job_id}: cannot pause a job that is FINISHED" in refused.stderr
    assert refused.stdout == ""


def test_submit_watch_follows_the_job_from_pending(system: System, api_url: str, project: str) -> None:
    pairs = ["--param", "steps=3", "--param", f"seconds={STEP_S}"]
    done = jobctl(system, api_url, "jobs", "submit", "-p", project, "-t", "sleep", *pairs, "--watch")
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.splitlines()[0]
    assert_bars_full(done.stdout)
    # every change of status was seen as it happened: the job's and each step's
    assert re.search(r"\d\d:\d\d:\d\d job RUNNING", done.stdout), done.stdout
    for index in range(3):
        assert f"step {index} sleep-{index + 1} FINISHED" in done.stdout, done.stdout
    assert system.job(job_id).status.value == "FINISHED"


def test_watch_of_a_failing_job_exits_1_with_the_error(system: System, api_url: str, project: str) -> None:
    job_id = submit_sleep(system, api_url, project, "fail_at=1")
    watched = jobctl(system, api_url, "jobs", "watch", job_id)
    assert watched.returncode == 1, watched.stdout + watched.stderr
    assert f"job {job_id} failed in step 1 sleep-2:" in watched.stderr
    assert re.search(r"^\s+0 sleep-1\s.*100%\s+FINISHED", watched.stdout, re.MULTILINE), watched.stdout
    assert re.search(r"^\s+1 sleep-2\s.*ERROR", watched.stdout, re.MULTILINE), watched.stdout

    listed = jobctl(system, api_url, "jobs", "list", "--project", project, "--status", "error")
    assert listed.returncode == 0, listed.stderr
    assert job_id[:12] in listed.stdout and "page 1 of 1 (1 job)" in listed.stdout


def test_a_named_token_works_until_revoked_across_processes(system: System, api_url: str, project: str) -> None:
    """The account lifecycle as a user runs it: each command a process of its own, against a real API server."""
    name = f"live-{project}"
    created = jobctl(system, api_url, "users", "create", name, "--role", f"{project}=viewer")
    assert created.returncode == 0, created.stderr
    made = jobctl(system, api_url, "tokens", "create", "ci", "--user", name, "--expires", "1h")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]

    mine = jobctl(system, api_url, "tokens", "list", "--json", token=token)
    assert mine.returncode == 0, mine.stderr
    assert sorted(t["name"] for t in json.loads(mine.stdout)) == ["ci", "default"]
    assert token not in mine.stdout

    assert jobctl(system, api_url, "tokens", "revoke", "ci", "--user", name).returncode == 0
    after = jobctl(system, api_url, "projects", "list", token=token)
    assert after.returncode == 1 and after.stderr.startswith("jobctl: invalid token"), after.stderr
    assert token not in after.stderr

    audit = jobctl(system, api_url, "audit", "--action", "token.", "--since", "1h", "--json")
    assert audit.returncode == 0, audit.stderr
    assert [(e["action"], e["subject"]) for e in json.loads(audit.stdout)["items"][:2]] == [
        ("token.revoke", f"{name}/ci"),
        ("token.create", f"{name}/ci"),
    ]
    gone = jobctl(system, api_url, "users", "delete", name, "--yes")
    assert gone.returncode == 0 and gone.stdout.strip() == f"deleted user {name}", gone.stderr
