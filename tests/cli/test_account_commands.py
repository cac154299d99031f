"""The account lifecycle's client commands - `jobctl users disable|enable|set|delete|revoke-role`, `jobctl tokens
...`, `jobctl projects set|delete`, `jobctl audit` - against a real in-process API, through CliRunner, as in
test_client_commands.py (whose fixtures these are).

The API here runs on a database of this module's own, whose only admin is `admin` (the token `TOKEN`): the
rules about the last enabled admin are this module's to test, whatever other modules' admins exist.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jobctl.cli import app, resources
from jobctl.cli.connection import Connector
from jobctl.client import AsyncClient, Client, User
from jobctl.scheduler.settings import Settings
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.aio import run
from tests.cli.test_client_commands import TOKEN, admin, cli, flat, http, no_client_environment, project, runner
from tests.conftest import fresh_database

__all__ = ["admin", "cli", "http", "no_client_environment", "project"]  # the fixtures this module uses

Cli = Callable[..., Any]


@pytest.fixture(scope="module")
def services(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The API's services on a fresh database: the API creates its only admin, `admin`, when it starts."""
    url, drop = fresh_database(backend, tmp_path_factory)
    built = build(settings.model_copy(update={"database_url": url}))
    yield built
    built.close()
    drop()


def unique(prefix: str) -> str:
    return f"{prefix}{time.time_ns() % 10**12}"


def new_user(cli: Cli, *args: str) -> tuple[str, str]:
    """A new user made with `jobctl users create` (`args`: its options): its name and its token."""
    name = unique("u")
    created = cli("users", "create", name, *args)
    assert created.exit_code == 0, created.output
    return name, created.stdout.strip().splitlines()[-1]


def last_line(result: Any) -> str:
    return str(result.stdout).strip().splitlines()[-1]


def refused(result: Any, *words: str) -> None:
    """The command failed with exit status 1, one `jobctl: ...` line on stderr holding `words`, nothing on stdout."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("jobctl: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


# ------------------------------------------------------------------------------------------------ users


def test_disable_refuses_the_users_tokens_until_enable(cli: Cli, project: str) -> None:
    name, token = new_user(cli, "--role", f"{project}=viewer")
    assert cli("projects", "list", token=token).exit_code == 0

    disabled = cli("users", "disable", name)
    assert disabled.exit_code == 0, disabled.output
    assert disabled.stdout.strip() == f"disabled user {name}"
    refused(cli("projects", "list", token=token), "invalid token")

    listed = cli("users", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[0].split() == ["NAME", "ADMIN", "DISABLED", "ROLES"]
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(name))
    assert row == [name, "yes", f"{project}=viewer"]
    assert next(u for u in json.loads(cli("users", "list", "--json").stdout) if u["name"] == name)["disabled"]

    enabled = cli("users", "enable", name, "--json")
    assert enabled.exit_code == 0, enabled.output
    assert json.loads(enabled.stdout) == {"name": name, "admin": False, "disabled": False, "roles": {project: "viewer"}}
    assert cli("projects", "list", token=token).exit_code == 0
    assert cli("users", "enable", name).stdout.strip() == f"enabled user {name}"  # enabling twice is fine

    refused(cli("users", "disable", "no-such-user"), "not found")
    refused(cli("users", "disable", name, token=token), "only administrators")  # a user, not an admin


def test_the_last_enabled_admin_is_kept(cli: Cli, http: TestClient) -> None:
    for command in (["users", "disable", "admin"], ["users", "set", "admin", "--no-admin"]):
        refused(cli(*command), "admin")
    refused(cli("users", "delete", "admin", "--yes"), "admin")
    me = Client(token=TOKEN, http=http).me()
    assert me.name == "admin" and me.admin  # nothing changed

    other, other_token = new_user(cli, "--admin")
    demoted = cli("users", "set", other, "--no-admin")
    assert demoted.exit_code == 0, demoted.output
    assert demoted.stdout.strip() == f"{other}: not an admin"
    promoted = cli("users", "set", other, "--admin", "--json")
    assert promoted.exit_code == 0 and json.loads(promoted.stdout)["admin"] is True
    # with a second enabled admin, either may be disabled - but not both
    assert cli("users", "disable", other).exit_code == 0
    refused(cli("users", "disable", "admin"), "admin")
    assert cli("users", "enable", other).exit_code == 0
    assert cli("users", "disable", "admin", token=other_token).exit_code == 0
    refused(cli("users", "disable", other, token=other_token), "admin")  # the other is the last one now
    assert cli("users", "enable", "admin", token=other_token).exit_code == 0
    assert cli("users", "delete", other, "--yes").exit_code == 0

    no_flag = cli("users", "set", other)
    assert no_flag.exit_code == 2 and "give --admin or --no-admin" in flat(no_flag.output)


def test_delete_asks_first_and_refuses_without_a_terminal(
    cli: Cli, http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, token = new_user(cli)
    piped = cli("users", "delete", name)
    refused(piped, "without confirmation", "--yes")
    assert any(u.name == name for u in Client(token=TOKEN, http=http).list_users())

    monkeypatch.setattr(resources, "interactive", lambda: True)
    obj = Connector(http=http)
    declined = runner.invoke(app, ["users", "delete", name, "--token", TOKEN], obj=obj, input="n\n")
    assert declined.exit_code == 1
    assert f"Delete user {name}? This cannot be undone." in declined.stderr
    assert f"did not delete user {name}" in declined.stderr
    assert any(u.name == name for u in Client(token=TOKEN, http=http).list_users())

    accepted = runner.invoke(app, ["users", "delete", name, "--token", TOKEN], obj=obj, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert last_line(accepted) == f"deleted user {name}"  # (CliRunner echoes the answer on stdout)
    assert not any(u.name == name for u in Client(token=TOKEN, http=http).list_users())
    refused(cli("projects", "list", token=token), "invalid token")  # their tokens went with them

    refused(cli("users", "delete", name, "--yes"), "not found")


def test_revoke_role_takes_the_roles_away(cli: Cli, admin: Client, project: str) -> None:
    second = unique("r")
    assert cli("projects", "create", second).exit_code == 0
    name, token = new_user(cli, "--role", f"{project}=operator", "--role", f"{second}=viewer")

    one = cli("users", "revoke-role", name, project)
    assert one.exit_code == 0, one.output
    assert one.stdout.strip() == f"{name}: {second}=viewer"
    refused(cli("jobs", "list", "--project", project, token=token), "not found")  # no role: no project

    both = cli("users", "revoke-role", name, project, second, "--json")
    assert both.exit_code == 0, both.output
    assert json.loads(both.stdout)["roles"] == {}
    assert cli("users", "revoke-role", name, second).stdout.strip() == f"{name}: no roles"

    refused(cli("users", "revoke-role", "no-such-user", project), "not found")
    refused(cli("users", "revoke-role", name, "no-such-project"), "no-such-project")
    missing = cli("users", "revoke-role", name)
    assert missing.exit_code == 2


# ------------------------------------------------------------------------------------------------ tokens


def test_tokens_of_a_user_create_list_revoke(cli: Cli, http: TestClient) -> None:
    name, _ = new_user(cli)
    created = cli("tokens", "create", "ci", "--user", name, "--expires", "30d")
    assert created.exit_code == 0, created.output
    token = last_line(created)
    assert f"created {name}'s token ci (expires " in created.stderr and "shown only this once" in created.stderr
    assert Client(token=token, http=http).me().name == name

    listed = cli("tokens", "list", "--user", name)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[0].split() == ["NAME", "PREFIX", "CREATED", "LAST", "USED", "EXPIRES"]
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert set(rows) == {"default", "ci"}
    assert "never" in rows["default"] and token not in listed.stdout
    raw = {t["name"]: t for t in json.loads(cli("tokens", "list", "--user", name, "--json").stdout)}
    assert token.startswith(raw["ci"]["prefix"]) and raw["ci"]["prefix"]
    assert "token" not in raw["ci"] and raw["ci"]["expired"] is False
    expires = datetime.fromisoformat(raw["ci"]["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert raw["default"]["expires_at"] is None

    refused(cli("tokens", "create", "ci", "--user", name), "ci")  # 409: one token per name and user
    refused(cli("tokens", "create", "x", "--user", "no-such-user"), "not found")
    refused(cli("tokens", "list", "--user", "no-such-user"), "not found")

    revoked = cli("tokens", "revoke", "ci", "--user", name)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.strip() == f"revoked {name}'s token ci"
    refused(cli("projects", "list", token=token), "invalid token")
    refused(cli("tokens", "revoke", "ci", "--user", name), "not found")
    assert [t["name"] for t in json.loads(cli("--json", "tokens", "list", "--user", name).stdout)] == ["default"]


def test_my_own_tokens(cli: Cli, http: TestClient, project: str) -> None:
    name, token = new_user(cli, "--role", f"{project}=viewer")
    created = cli("tokens", "create", "laptop", "--expires", "12h", token=token)
    assert created.exit_code == 0, created.output
    laptop = last_line(created)
    assert "created your token laptop" in created.stderr
    assert Client(token=laptop, http=http).me().name == name

    mine = cli("tokens", "list", "--json", token=laptop)
    assert mine.exit_code == 0, mine.output
    assert sorted(t["name"] for t in json.loads(mine.stdout)) == ["default", "laptop"]
    refused(cli("tokens", "list", "--user", "admin", token=token), "only administrators")  # others' are admins'

    revoked = cli("tokens", "revoke", "laptop", token=token)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.strip() == "revoked your token laptop"
    refused(cli("projects", "list", token=laptop), "invalid token")
    refused(cli("tokens", "revoke", "laptop", token=token), "not found")

    json_created = cli("--json", "tokens", "create", "ci", token=token)
    assert json_created.exit_code == 0, json_created.output
    data = json.loads(json_created.stdout)
    assert data["name"] == "ci" and data["token"].startswith(data["prefix"]) and data["expires_at"] is None


def test_expires_takes_a_duration_or_a_future_time(cli: Cli) -> None:
    name, _ = new_user(cli)
    for bad in ("soon", "30x", "0d", "-1d"):
        result = cli("tokens", "create", "t", "--user", name, "--expires", bad)
        assert result.exit_code == 2, (bad, result.output)
        assert "--expires" in flat(result.output), result.output
    refused(cli("tokens", "create", "t", "--user", name, "--expires", "2020-01-01T00:00:00Z"), "future")

    iso = cli("tokens", "create", "t", "--user", name, "--expires", "2099-06-01T12:00:00+02:00", "--json")
    assert iso.exit_code == 0, iso.output
    assert datetime.fromisoformat(json.loads(iso.stdout)["expires_at"]) == datetime(2099, 6, 1, 10, tzinfo=UTC)
    local = cli("tokens", "create", "u", "--user", name, "--expires", "2099-06-01", "--json")
    assert datetime.fromisoformat(json.loads(local.stdout)["expires_at"]) == datetime(2099, 6, 1).astimezone()


# ------------------------------------------------------------------------------------------------ projects


def test_projects_set_changes_the_limit(cli: Cli, project: str) -> None:
    five = cli("projects", "set", project, "--max-running", "5")
    assert five.exit_code == 0, five.output
    assert five.stdout.strip() == f"project {project}: max running 5"
    default = cli("projects", "set", project, "--default-max-running", "--json")
    assert default.exit_code == 0, default.output
    assert json.loads(default.stdout)["max_running"] is None
    listed = cli("projects", "list")
    assert any(line.split()[:2] == [project, "default"] for line in listed.stdout.splitlines())

    for args in ([], ["--max-running", "2", "--default-max-running"]):
        result = cli("projects", "set", project, *args)
        assert result.exit_code == 2 and "give either --max-running N or --default-max-running" in flat(result.output)
    assert cli("projects", "set", project, "--max-running", "0").exit_code == 2
    refused(cli("projects", "set", "no-such-project", "--max-running", "2"), "not found")


def test_projects_delete_waits_for_the_jobs_to_be_final(cli: Cli, project: str) -> None:
    submitted = cli("jobs", "submit", "-p", project, "-t", "sleep")
    assert submitted.exit_code == 0, submitted.output
    job_id = last_line(submitted)

    refused(cli("projects", "delete", project), "without confirmation", "--yes")
    refused(cli("projects", "delete", project, "--yes"), project)  # 409: a PENDING job
    assert cli("jobs", "discard", job_id).exit_code == 0
    deleted = cli("projects", "delete", project, "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == f"deleted project {project}"
    assert all(p["name"] != project for p in json.loads(cli("projects", "list", "--json").stdout))
    refused(cli("projects", "delete", project, "-y"), "not found")


# ------------------------------------------------------------------------------------------------ audit


def test_audit_lists_who_did_what(cli: Cli) -> None:
    name, token = new_user(cli)
    assert cli("tokens", "create", "ci", "--user", name).exit_code == 0
    refused(cli("users", "delete", "admin", "--yes"))  # refused: recorded with its error code

    table = cli("audit", "--since", "1h", "--actor", "admin", "--page-size", "3")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["AT", "ACTOR", "ACTION", "SUBJECT", "ADDRESS", "OUTCOME"]
    assert re.search(r"admin\s+user\.delete\s+admin\s.*\sconflict\s*$", lines[1]), table.stdout  # newest first
    assert re.search(r"admin\s+token\.create\s.*\sok\s*$", lines[2]), table.stdout
    assert re.fullmatch(r"page 1 of \d+ \(\d+ entries\)", lines[-1].strip()), lines[-1]

    raw = json.loads(cli("audit", "--since", "1h", "--actor", "admin", "--page-size", "3", "--json").stdout)
    assert [(e["action"], e["subject"], e["outcome"]) for e in raw["items"]] == [
        ("user.delete", "admin", "conflict"),
        ("token.create", f"{name}/ci", "ok"),
        ("user.create", name, "ok"),
    ]
    assert raw["items"][1]["details"]["expires_at"] is None

    page = json.loads(cli("audit", "--action", "token.create", "--page-size", "1", "--json").stdout)
    assert page["page"] == 1 and page["page_size"] == 1 and page["total"] >= 1
    assert [(e["action"], e["subject"]) for e in page["items"]] == [("token.create", f"{name}/ci")]  # newest first
    kind = json.loads(cli("--json", "audit", "--action", "token.", "--since", "2000-01-01").stdout)
    assert kind["items"] and all(e["action"].startswith("token.") for e in kind["items"])
    future = json.loads(cli("audit", "--since", "2099-01-01T00:00:00Z", "--json").stdout)
    assert future["items"] == [] and future["total"] == 0

    last = cli("audit", "--page", "2", "--page-size", "1")
    assert last.exit_code == 0 and "page 2 of" in last.stdout.splitlines()[-1]
    assert cli("audit", "--since", "yesterday").exit_code == 2
    refused(cli("audit", token=token), "only administrators")


# ------------------------------------------------------------------------------------------------ older servers


@pytest.mark.parametrize(
    "command",
    [
        ["users", "disable", "bob"],
        ["users", "set", "bob", "--admin"],
        ["users", "delete", "bob", "--yes"],
        ["tokens", "list"],
        ["tokens", "create", "ci", "--user", "bob"],
        ["tokens", "revoke", "ci"],
        ["projects", "set", "demo", "--max-running", "2"],
        ["projects", "delete", "demo", "--yes"],
        ["audit"],
    ],
    ids=" ".join,
)
def test_commands_on_a_server_without_the_routes(command: list[str]) -> None:
    def no_such_route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such route"}})

    old = httpx.Client(transport=httpx.MockTransport(no_such_route), base_url="http://old")
    result = runner.invoke(app, [*command, "--token", TOKEN], obj=Connector(http=old))
    refused(result, "does not offer")


# ------------------------------------------------------------------------------------------------ the client


class Recorder:
    """A scripted server: answers each request with the next of `answers`, keeping the requests."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)

    def seen(self) -> list[tuple[str, str, Any]]:
        return [(r.method, str(r.url), json.loads(r.content) if r.content else None) for r in self.requests]


TOKEN_JSON = {"name": "ci", "prefix": "abc", "created_at": "2026-01-01T00:00:00Z", "expires_at": None}


def test_the_clients_send_the_same_requests() -> None:
    """Sync and async alike: the paths (`/me/tokens` without `user`), the bodies (only what is given), the times
    (a timedelta from now, back from now for `since`, in UTC)."""

    def answers() -> list[httpx.Response]:
        return [
            httpx.Response(201, json={**TOKEN_JSON, "token": "abcdef"}),
            httpx.Response(200, json=[{**TOKEN_JSON, "last_used_at": None, "expired": False}]),
            httpx.Response(204),
            httpx.Response(200, json={"name": "bob", "admin": False, "disabled": True, "roles": {}}),
            httpx.Response(204),
            httpx.Response(200, json={"name": "p", "max_running": None, "created_at": "2026-01-01T00:00:00Z"}),
            httpx.Response(204),
            httpx.Response(200, json={"items": [], "total": 0, "page": 2, "page_size": 10}),
        ]

    def run_sync(recorder: Recorder) -> list[Any]:
        c = Client("http://api", "t", http=httpx.Client(transport=httpx.MockTransport(recorder), base_url="http://api"))
        return [
            c.create_token("ci", user="bob/x", expires_at=timedelta(days=1)),
            c.list_tokens(),
            c.revoke_token("ci"),
            c.update_user("bob", disabled=True),
            c.delete_user("bob"),
            c.update_project("p", max_running=None),
            c.delete_project("p"),
            c.audit(actor="bob", action="user.", since=timedelta(hours=2), page=2, page_size=10),
        ]

    async def run_async(recorder: Recorder) -> list[Any]:
        transport = httpx.MockTransport(recorder)
        c = AsyncClient("http://api", "t", http=httpx.AsyncClient(transport=transport, base_url="http://api"))
        return [
            await c.create_token("ci", user="bob/x", expires_at=timedelta(days=1)),
            await c.list_tokens(),
            await c.revoke_token("ci"),
            await c.update_user("bob", disabled=True),
            await c.delete_user("bob"),
            await c.update_project("p", max_running=None),
            await c.delete_project("p"),
            await c.audit(actor="bob", action="user.", since=timedelta(hours=2), page=2, page_size=10),
        ]

    sync, asynchronous = Recorder(*answers()), Recorder(*answers())
    before = datetime.now(UTC)
    answered = run_sync(sync)
    assert [type(a).__name__ for a in answered] == [
        "NewToken",
        "list",
        "NoneType",
        "User",
        "NoneType",
        "Project",
        "NoneType",
        "AuditPage",
    ]
    assert run(run_async(asynchronous)) == answered
    for recorder in (sync, asynchronous):
        seen = recorder.seen()
        method, url, body = seen[0]
        assert (method, url) == ("POST", "http://api/api/v1/users/bob%2Fx/tokens")
        assert body["name"] == "ci" and body["expires_at"].endswith("Z")
        expires = datetime.fromisoformat(body["expires_at"])
        assert timedelta(days=1) <= expires - before < timedelta(days=1, minutes=1)
        assert seen[1:7] == [
            ("GET", "http://api/api/v1/me/tokens", None),
            ("DELETE", "http://api/api/v1/me/tokens/ci", None),
            ("PATCH", "http://api/api/v1/users/bob", {"disabled": True}),
            ("DELETE", "http://api/api/v1/users/bob", None),
            ("PATCH", "http://api/api/v1/projects/p", {"max_running": None}),
            ("DELETE", "http://api/api/v1/projects/p", None),
        ]
        audit = recorder.requests[7].url
        assert audit.path == "/api/v1/audit"
        assert {k: audit.params[k] for k in ("actor", "action", "page", "page_size")} == {
            "actor": "bob",
            "action": "user.",
            "page": "2",
            "page_size": "10",
        }
        since = datetime.fromisoformat(audit.params["since"])
        assert timedelta(hours=2) - timedelta(minutes=1) < before - since <= timedelta(hours=2)

    with Client("http://api", "t") as c, pytest.raises(ValueError, match="nothing to change"):
        c.update_user("bob")


def test_a_user_from_an_older_server_is_enabled() -> None:
    assert User.model_validate({"name": "bob", "admin": False, "roles": {}}).disabled is False
