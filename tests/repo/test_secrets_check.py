"""The end-of-session secrets check (tests/secrets_check.py) finds what it must, names file and line, never prints
the secret, and fails a session: a planted secret in a temporary log is reported; a clean log is not."""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import secrets_check
from tests.secrets_check import Leak, log_files, redact, remember, report, scan_files, scan_records, scan_text


def test_a_planted_secret_is_found_with_its_file_and_line(tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(32)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "api.log").write_text(f"INFO started\nINFO GET /api/v1/me 200\nDEBUG Authorization: Bearer {secret}\n")
    (logs / "worker.log").write_text("INFO nothing to see\n")
    (logs / "nested").mkdir()
    (logs / "nested" / "flower.log").write_bytes(b"\xff\xfe not utf-8, still scanned: " + secret.encode() + b"\n")
    (logs / "notes.txt").write_text(secret)  # not a log file

    found = scan_files(log_files(tmp_path), [secret, "another-secret-nobody-used"])

    assert [(Path(leak.where).name, leak.line) for leak in found] == [("api.log", 3), ("flower.log", 1)]
    assert all(leak.secret == secret for leak in found)


def test_the_report_names_file_and_line_but_never_the_secret() -> None:
    secret = "hunter2-but-longer"
    message = report([Leak("/tmp/x/api.log", 7, secret)])
    assert "/tmp/x/api.log:7" in message
    assert secret not in message and secret[:6] not in message
    assert redact(secret) in message


def test_a_clean_log_and_no_secrets_find_nothing(tmp_path: Path) -> None:
    (tmp_path / "api.log").write_text("INFO all good\n")
    assert scan_files(log_files(tmp_path), ["s3cret-token-value"]) == []
    assert scan_files(log_files(tmp_path), []) == []
    assert scan_text("anything", [], "x") == []


def test_every_occurrence_is_reported_and_the_longest_secret_wins() -> None:
    short, long = "abcdefgh", "abcdefgh-and-more"
    text = f"one {long}\ntwo\nthree {short} and {short}\n"
    found = scan_text(text, [short, long], "t.log")
    assert [(leak.line, leak.secret) for leak in found] == [(1, long), (3, short), (3, short)]


def test_in_process_records_are_scanned() -> None:
    secret = secrets.token_urlsafe(16)
    records = [
        ("jobctl.api.app", "INFO jobctl.api.app: created"),
        ("jobctl.api.auth", f"WARNING jobctl.api.auth: bad token {secret}"),
    ]
    assert [leak.where for leak in scan_records(records, [secret])] == ["log record 2 (jobctl.api.auth)"]


def test_the_plugin_captures_jobctl_log_records_and_collects_handed_out_tokens() -> None:
    """Registered for this session: INFO records of jobctl's loggers are kept, and short strings are not secrets."""
    marker = f"marker-{secrets.token_hex(8)}"
    logging.getLogger("jobctl.api.some.module").info("a line with %s", marker)
    assert any(marker in line for _, line in secrets_check.RECORDS)
    before = set(secrets_check.SECRETS)
    remember("short")
    remember(None)
    assert before == secrets_check.SECRETS


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_a_session_that_logs_a_secret_fails(tmp_path: Path, workers: list[str]) -> None:
    """End to end: a pytest session whose test writes a known secret into a log under the base temp fails with
    exit status 1 and a message naming the file, without the secret; also when pytest-xdist runs the tests in
    workers (`make test`), each of which knows only its own secrets."""
    secret = f"planted-{secrets.token_hex(12)}"
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.secrets_check"]\n')
    (tmp_path / "test_leak.py").write_text(
        textwrap.dedent(
            f"""
            import logging
            from tests.secrets_check import remember

            def test_leaks(tmp_path):
                remember({secret!r})
                (tmp_path / "service.log").write_text("INFO hello\\nINFO token={secret}\\n")

            def test_leaks_in_process():
                remember({secret!r})  # under xdist, maybe another worker than the one above
                logging.getLogger("jobctl.api.routes.users").warning("created with token %s", {secret!r})
            """
        )
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "base"),
            *workers,
            ".",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "2 passed" in output
    assert "secrets in logs" in output
    assert "service.log:2" in output
    assert "log record" in output and "(jobctl.api.routes.users)" in output
    assert secret not in output
