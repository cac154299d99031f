"""Security headers (`api/headers.py`): on every response, whatever its status and whoever made it - a route, the
request guard, an error - a policy that allows no inline script, no `eval` and no framing; `/docs` has its own,
wider only by the hash of Swagger UI's inline start-up script (tests/api/test_docs_ui.py), and nothing else."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from jobctl.api.guard import MAX_BODY_BYTES


def _policy(response_headers: object) -> dict[str, str]:
    csp = response_headers["content-security-policy"]  # type: ignore[index]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in csp.split(";"))}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/", None, 200),  # the monitor page
        ("GET", "/static/app.js", None, 200),
        ("GET", "/ui/config.json", None, 200),
        ("GET", "/healthz", None, 200),
        ("GET", "/api/v1/me", None, 200),
        ("GET", "/api/v1/jobs/no-such-job", None, 404),
        ("GET", "/no/such/route", None, 404),
        ("POST", "/api/v1/jobs", b"{not json", 400),  # refused by the request guard, before any route
        ("POST", "/api/v1/projects", b" " * (MAX_BODY_BYTES + 1), 413),
        ("DELETE", "/healthz", None, 405),
    ],
)
def test_every_response_carries_the_headers(
    client: TestClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = _policy(response.headers)
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert "unsafe" not in response.headers["content-security-policy"]


def test_an_unauthorised_answer_carries_them_too(anonymous: TestClient) -> None:
    response = anonymous.get("/api/v1/jobs")
    assert response.status_code == 401 and response.headers["x-frame-options"] == "DENY"
    assert _policy(response.headers)["frame-ancestors"] == "'none'"


def test_the_swagger_page_allows_its_start_up_script_by_hash_and_nothing_more(anonymous: TestClient) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    policy = _policy(page.headers)
    assert policy["script-src"].startswith("'self' 'sha256-") and len(policy["script-src"].split()) == 2
    assert policy["frame-ancestors"] == "'none'" and "unsafe" not in page.headers["content-security-policy"]
    assert policy["style-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" in page.text  # what the exception is for: if FastAPI's page changes, so must the policy
