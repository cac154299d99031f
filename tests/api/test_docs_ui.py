"""Swagger UI at `/docs` (`api/routes/docs.py`): served whole from jobctl's own origin - the page, and Swagger UI's
files from the installed package - under a policy that allows no other host, no `eval`, and no inline script but
the page's own start-up script, named by its hash."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from jobctl.api.routes import docs


def _policy(csp: str) -> dict[str, str]:
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in csp.split(";"))}


def _referenced(page: str) -> list[str]:
    """Every URL the page loads: its `src` and `href` attributes, and the schema `url` its script gives."""
    return re.findall(r'(?:src|href)="([^"]*)"', page) + re.findall(r"\burl: '([^']*)'", page)


def test_the_page_refers_only_to_its_own_origin(anonymous: TestClient) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle(" in page.text
    urls = _referenced(page.text)
    assert f"{docs.STATIC_URL}/swagger-ui-bundle.js" in urls and f"{docs.STATIC_URL}/swagger-ui.css" in urls
    assert "/openapi.json" in urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
    assert re.search(r"https?://", page.text) is None  # no absolute URL at all: nothing from another host


def test_swagger_ui_files_are_served_with_their_types(anonymous: TestClient) -> None:
    page = anonymous.get("/docs").text
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in (u for u in _referenced(page) if u.startswith(docs.STATIC_URL)):
        answer = anonymous.get(url)
        kind = kinds[url[url.rindex(".") :]]
        assert answer.status_code == 200 and kind in answer.headers["content-type"], url
        assert answer.headers["x-content-type-options"] == "nosniff"
    bundle = anonymous.get(f"{docs.STATIC_URL}/swagger-ui-bundle.js").text
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert version is not None and int(version[1]) >= 5  # swagger-ui 5: the first that renders OpenAPI 3.1
    assert anonymous.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert anonymous.get(f"{docs.STATIC_URL}/%2e%2e/core.py").status_code == 404  # nothing outside the folder


def test_the_policy_allows_no_other_host_no_eval_and_only_the_start_up_script(anonymous: TestClient) -> None:
    page = anonymous.get("/docs")
    csp = page.headers["content-security-policy"]
    assert "http" not in csp and "jsdelivr" not in csp and "unsafe" not in csp  # no unsafe-eval, unsafe-inline
    policy = _policy(csp)
    scripts = re.findall(r"<script>(.*?)</script>", page.text, flags=re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    for directive in ("default-src", "style-src", "connect-src", "font-src"):
        assert policy[directive] == "'self'", directive
    assert policy["img-src"] == "'self' data:" and policy["frame-ancestors"] == "'none'"
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"


def test_no_other_swagger_page_is_left(anonymous: TestClient) -> None:
    assert anonymous.get("/docs/oauth2-redirect").status_code == 404  # FastAPI's own, with its inline script
    assert anonymous.head("/docs").status_code == 200
