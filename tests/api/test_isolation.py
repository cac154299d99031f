"""Project isolation over every route of the OpenAPI document (docs/contract.md §3).

The routes are read from `app.openapi()`, so a new route is covered as soon as it exists: its path parameters
are filled with things of project `b` (a job, its step 0, a target) and each caller's answer is checked:

- without a token, or with a wrong one: 401 everywhere except the `PUBLIC` routes;
- an operator of `a` only: 404 for every route that names something of `b` (a batch reports `b`'s job as not
  found), 403 for the admin-only routes, and nothing of `b` in any other answer;
- a viewer of `b`: every GET answers, every other method is 403;
- an admin: never 401, 403 or 404.

A route whose path parameter, request body or expectation this module does not know fails the test, naming
the route: add it to `CASES` (or `PATH_VALUES`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

#: Routes answered without authentication, and why.
PUBLIC = {
    "/healthz": "liveness (docs/contract.md §4)",
    "/readyz": "readiness (docs/contract.md §4)",
    "/ui/config.json": "the web monitor's bootstrap: Flower's URL, nothing secret (api/routes/ui.py)",
}


@dataclass
class World:
    """Project `a` (the operator's), project `b` with one PENDING job and one target, and a spare user."""

    a: str
    b: str
    job: str
    target: str
    user: str
    webhook: str


@dataclass(frozen=True)
class Case:
    """What a route is sent and what it must answer. `touches_b`: the request names something of `b`."""

    body: Callable[[World], Any] | None = None
    query: Callable[[World], dict[str, Any]] | None = None
    touches_b: bool = True
    admin_only: bool = False
    own: bool = False  # the caller's own (tokens): any signed-in user may; nothing of `b` is named
    operators: bool = False  # even reading it needs the operator role (webhooks: their URLs may hold credentials)


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


#: Routes that need more than path parameters filled, or that do not name anything of `b` by their path.
CASES: dict[tuple[str, str], Case] = {
    ("GET", "/healthz"): Case(touches_b=False),
    ("GET", "/readyz"): Case(touches_b=False),
    ("GET", "/metrics"): Case(touches_b=False),
    ("GET", "/ui/config.json"): Case(touches_b=False),
    ("GET", "/api/v1/me"): Case(touches_b=False),
    ("GET", "/api/v1/projects"): Case(touches_b=False),
    ("POST", "/api/v1/projects"): Case(body=lambda w: {"name": _fresh("iso")}, touches_b=False, admin_only=True),
    ("GET", "/api/v1/users"): Case(touches_b=False, admin_only=True),
    ("POST", "/api/v1/users"): Case(body=lambda w: {"name": _fresh("iso")}, touches_b=False, admin_only=True),
    ("PUT", "/api/v1/users/{name}/roles"): Case(body=lambda w: {w.b: "viewer"}, admin_only=True),
    ("GET", "/api/v1/jobs"): Case(query=lambda w: {"project": w.b}),
    ("POST", "/api/v1/jobs"): Case(body=lambda w: {"project": w.b, "type": "sleep", "params": {"steps": 1}}),
    ("POST", "/api/v1/jobs/batch"): Case(body=lambda w: {"action": "pause", "ids": [w.job]}),
    ("POST", "/api/v1/jobs/bulk"): Case(body=lambda w: {"jobs": [{"project": w.b, "type": "sleep"}]}),
    ("PATCH", "/api/v1/jobs/{job_id}"): Case(body=lambda w: {"params": {"steps": 1}}),
    ("GET", "/api/v1/types"): Case(touches_b=False),
    ("GET", "/api/v1/events"): Case(query=lambda w: {"project": w.b}),
    ("PUT", "/api/v1/projects/{project}/targets/{kind}/{name}"): Case(body=lambda w: {"attributes": {"v": 2}}),
    ("PATCH", "/api/v1/projects/{project}"): Case(body=lambda w: {"max_running": 5}, admin_only=True),
    ("DELETE", "/api/v1/projects/{project}"): Case(admin_only=True),
    ("PATCH", "/api/v1/users/{name}"): Case(body=lambda w: {"disabled": False}, admin_only=True),
    ("DELETE", "/api/v1/users/{name}"): Case(admin_only=True),
    ("GET", "/api/v1/users/{name}/tokens"): Case(admin_only=True),
    ("POST", "/api/v1/users/{name}/tokens"): Case(body=lambda w: {"name": _fresh("iso")}, admin_only=True),
    ("DELETE", "/api/v1/users/{name}/tokens/{token_name}"): Case(admin_only=True),
    ("GET", "/api/v1/me/tokens"): Case(touches_b=False, own=True),
    ("POST", "/api/v1/me/tokens"): Case(body=lambda w: {"name": _fresh("iso")}, touches_b=False, own=True),
    ("DELETE", "/api/v1/me/tokens/{token_name}"): Case(touches_b=False, own=True),
    ("GET", "/api/v1/audit"): Case(touches_b=False, admin_only=True),
    ("GET", "/api/v1/stats"): Case(query=lambda w: {"project": w.b}),
    ("POST", "/api/v1/projects/{project}/webhooks"): Case(
        body=lambda w: {"url": "http://127.0.0.1:9/hook", "statuses": ["ERROR"]}
    ),
    ("GET", "/api/v1/projects/{project}/webhooks"): Case(operators=True),
    ("GET", "/api/v1/projects/{project}/webhooks/{webhook_id}/deliveries"): Case(operators=True),
}

#: How each path parameter is filled: with something of project `b`.
PATH_VALUES: dict[str, Callable[[World], str]] = {
    "job_id": lambda w: w.job,
    "index": lambda w: "0",
    "project": lambda w: w.b,
    "kind": lambda w: "record",
    "name": lambda w: w.target,
    "webhook_id": lambda w: w.webhook,
}
#: Path parameters named differently under some prefix.
PATH_VALUES_UNDER: dict[str, dict[str, Callable[[World], str]]] = {
    "/api/v1/users/": {"name": lambda w: w.user, "token_name": lambda w: "default"},
    "/api/v1/me/": {"token_name": lambda w: "no-such-token"},  # never the caller's own token: it signs them in
}

METHODS = ("get", "post", "put", "patch", "delete")


def routes(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path template, operation) of every route in the app's OpenAPI document."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [
        (method.upper(), path, operation)
        for path, item in sorted(spec["paths"].items())
        for method, operation in item.items()
        if method in METHODS
    ]


def case_of(method: str, path: str, operation: dict[str, Any]) -> Case:
    """The route's `Case`; fails for a route that cannot be filled from its path alone and is not in `CASES`."""
    case = CASES.get((method, path))
    if case is None:
        if "{" not in path:
            pytest.fail(f"{method} {path}: no path parameter names a project; say in CASES what it must answer")
        case = Case()
    if operation.get("requestBody", {}).get("required") and case.body is None:
        pytest.fail(f"{method} {path} needs a request body: add one to CASES")
    return case


def url_of(path: str, world: World) -> str:
    values = dict(PATH_VALUES)
    for prefix, overrides in PATH_VALUES_UNDER.items():
        if path.startswith(prefix):
            values.update(overrides)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(f"{path}: no value for the path parameter {name!r}; add it to PATH_VALUES")
        return values[name](world)

    return re.sub(r"{(\w+)}", fill, path)


def call(
    client: TestClient, method: str, path: str, case: Case, world: World, headers: dict[str, str] | None
) -> tuple[int, str]:
    """Send the route's request; (status, body). A `text/event-stream` answer is left unread (it never ends)."""
    kwargs: dict[str, Any] = {}
    if headers is not None:
        kwargs["headers"] = headers
    if case.body is not None:
        kwargs["json"] = case.body(world)
    if case.query is not None:
        kwargs["params"] = case.query(world)
    with client.stream(method, url_of(path, world), **kwargs) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, ""
        response.read()
        return response.status_code, response.text


@pytest.fixture
def world_factory(
    client: TestClient, new_project: Callable[[], str], user: Callable[..., dict[str, str]]
) -> tuple[Callable[[], World], dict[str, dict[str, str]]]:
    """A factory of fresh `World`s over the same two projects, and the callers' headers."""
    a, b = new_project(), new_project()
    callers = {"operator of a": user({a: "operator"}), "viewer of b": user({b: "viewer"})}

    def make() -> World:
        job = client.post("/api/v1/jobs", json={"project": b, "type": "sleep", "params": {"steps": 1, "seconds": 0}})
        assert job.status_code == 201, job.text
        target = _fresh("t")
        assert client.put(f"/api/v1/projects/{b}/targets/record/{target}", json={"attributes": {}}).status_code == 200
        name = _fresh("spare")
        assert client.post("/api/v1/users", json={"name": name}).status_code == 201
        hook = client.post(
            f"/api/v1/projects/{b}/webhooks", json={"url": "http://127.0.0.1:9/h", "statuses": ["ERROR"]}
        )
        assert hook.status_code == 201, hook.text
        return World(a=a, b=b, job=job.json()["id"], target=target, user=name, webhook=hook.json()["id"])

    return make, callers


def test_the_document_lists_the_routes_this_module_expects(client: TestClient) -> None:
    listed = {(m, p) for m, p, _ in routes(client)}
    for method, path in [
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/users"),
        ("PUT", "/api/v1/users/{name}/roles"),
        ("POST", "/api/v1/jobs/batch"),
        ("GET", "/api/v1/jobs/{job_id}/steps/{index}/log"),
        ("DELETE", "/api/v1/projects/{project}/targets/{kind}/{name}"),
    ]:
        assert (method, path) in listed


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}])
def test_every_route_but_the_public_ones_needs_a_token(
    anonymous: TestClient,
    world_factory: tuple[Callable[[], World], dict[str, dict[str, str]]],
    headers: dict[str, str] | None,
) -> None:
    make, _ = world_factory
    world = make()
    for method, path, operation in routes(anonymous):
        status, body = call(anonymous, method, path, case_of(method, path, operation), world, headers)
        if path in PUBLIC:
            assert status not in (401, 403), (method, path, body)
        else:
            assert status == 401, (method, path, status, body)


def test_an_operator_of_another_project_never_sees_b(
    client: TestClient, world_factory: tuple[Callable[[], World], dict[str, dict[str, str]]]
) -> None:
    make, callers = world_factory
    headers = callers["operator of a"]
    world = make()
    before = client.get(f"/api/v1/jobs/{world.job}").json()
    for method, path, operation in routes(client):
        case = case_of(method, path, operation)
        status, body = call(client, method, path, case, world, headers)
        where = (method, path, status, body[:300])
        if case.admin_only:
            assert status == 403, where
        elif case.own:
            assert status < 400 or status == 404, where  # 404: no token of that name
            assert world.b not in body and world.job not in body, where
        elif path == "/api/v1/jobs/batch":
            assert status == 200, where
            assert httpx.Response(200, text=body).json() == {
                "results": [{"id": world.job, "ok": False, "status": None, "error": f"job {world.job!r} not found"}]
            }
        elif path == "/api/v1/jobs/bulk":  # refused item by item: b does not exist for this caller
            assert status == 422, where
            items = httpx.Response(422, text=body).json()["error"]["items"]
            assert items == [{"index": 0, "message": f"project {world.b!r} not found"}], where
        elif case.touches_b:
            assert status == 404, where
        else:
            assert status < 400, where
            assert world.b not in body and world.job not in body, where
    after = client.get(f"/api/v1/jobs/{world.job}").json()
    assert after["status"] == before["status"] == "PENDING"
    assert len(client.get(f"/api/v1/jobs/{world.job}/events").json()) == 1  # only its submit

    listed = client.get("/api/v1/jobs", headers=headers, params={"page_size": 200})
    assert listed.status_code == 200
    assert all(job["project"] == world.a for job in listed.json()["items"])
    assert listed.json()["total"] == 0  # `a` has no jobs; `b`'s are not counted
    by_id = client.get("/api/v1/jobs", headers=headers, params={"id": world.job}).json()
    assert by_id["items"] == [] and by_id["total"] == 0  # b's job, asked for by its id: not there either
    assert [p["name"] for p in client.get("/api/v1/projects", headers=headers).json()] == [world.a]


def test_a_viewer_reads_but_may_change_nothing(
    client: TestClient, world_factory: tuple[Callable[[], World], dict[str, dict[str, str]]]
) -> None:
    make, callers = world_factory
    headers = callers["viewer of b"]
    world = make()
    for method, path, operation in routes(client):
        case = case_of(method, path, operation)
        status, body = call(client, method, path, case, world, headers)
        where = (method, path, status, body[:300])
        if case.own:
            assert status < 400 or status == 404, where
        elif method == "GET" and not case.admin_only and not case.operators:
            assert status == 200, where
        else:
            assert status == 403, where
    assert client.get(f"/api/v1/jobs/{world.job}").json()["status"] == "PENDING"
    assert [t["name"] for t in client.get(f"/api/v1/projects/{world.b}/targets").json()] == [world.target]
    assert world.job in [j["id"] for j in client.get("/api/v1/jobs", headers=headers).json()["items"]]


def test_an_admin_is_never_refused_for_visibility(
    client: TestClient, world_factory: tuple[Callable[[], World], dict[str, dict[str, str]]]
) -> None:
    make, _ = world_factory
    for method, path, operation in routes(client):
        world = make()  # the admin's calls do change things (discard, delete): a fresh world each
        case = case_of(method, path, operation)
        status, body = call(client, method, path, case, world, None)
        refused = (401, 403) if case.own else (401, 403, 404)  # own: there is no such token of the admin's
        assert status not in refused and status < 500, (method, path, status, body[:300])


def test_every_route_has_typed_models(client: TestClient) -> None:
    """Every success answer has a schema (a JSON one names a model, or a list of one) unless it is a 204, and
    every JSON request body names a model."""
    schemas = client.app.openapi()["components"]["schemas"]  # type: ignore[attr-defined]

    def named(schema: dict[str, Any]) -> bool:
        schema = schema.get("items", schema) if schema.get("type") == "array" else schema
        refs = [schema, *schema.get("anyOf", [])]
        return any(r.get("$ref", "").rsplit("/", 1)[-1] in schemas for r in refs)

    for method, path, operation in routes(client):
        answers = {code: a for code, a in operation["responses"].items() if code.startswith("2")}
        assert answers, (method, path)
        for code, answer in answers.items():
            if code == "204":
                continue
            content = answer.get("content", {})
            assert content and all("schema" in c for c in content.values()), (method, path, code)
            if "application/json" in content:
                assert named(content["application/json"]["schema"]), (method, path, code)
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            assert named(body["schema"]), (method, path)
    batch = client.app.openapi()["paths"]["/api/v1/jobs/batch"]["post"]  # type: ignore[attr-defined]
    assert batch["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert set(schemas["BatchResult"]["properties"]) == {"id", "ok", "status", "error"}
    assert "refused" in schemas["ErrorDetail"]["properties"]
    assert "token" in schemas["UserCreated"]["properties"] and "token" not in schemas["User"]["properties"]
    assert schemas["JobBatch"]["additionalProperties"] is False
    assert schemas["UserCreate"]["additionalProperties"] is False
