"""The API's interactive documentation at `/docs`: FastAPI's Swagger UI page, with Swagger UI's own files served
from an installed package (`fastapi-offline`, which ships swagger-ui 5, the first to render OpenAPI 3.1) under
`/docs/static/`, never from a CDN. The page works offline and loads nothing from another origin.

The page starts Swagger UI with an inline script (FastAPI's `get_swagger_ui_html`). It is rendered once, here, so
that script never changes while the process runs: `SCRIPT_HASHES` are the CSP hashes of its inline scripts, the
only inline scripts the page's Content-Security-Policy lets run (`api/headers.py`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

PATH = "/docs"
STATIC_URL = "/docs/static"
OPENAPI_URL = "/openapi.json"
#: swagger-ui-bundle.js, swagger-ui.css and favicon.png, as the package installed them
STATIC_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

PAGE = bytes(
    get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title="jobctl - Swagger UI",
        swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_URL}/favicon.png",
    ).body
)


def _script_hashes(page: bytes) -> tuple[str, ...]:
    """The CSP source (`'sha256-...'`) of every inline `<script>` of `page`: the hash of its exact text."""
    scripts = re.findall(rb"<script>(.*?)</script>", page, flags=re.DOTALL)
    return tuple(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts)


SCRIPT_HASHES = _script_hashes(PAGE)

router = APIRouter()


@router.api_route(PATH, methods=["GET", "HEAD"], include_in_schema=False)
def swagger_ui() -> HTMLResponse:
    """The Swagger UI page."""
    return HTMLResponse(PAGE)


def install(app: FastAPI) -> None:
    """Serve the page through `router` and Swagger UI's files as static files. `app` must be made with
    `docs_url=None` (no CDN page of FastAPI's own) and publish its schema at `OPENAPI_URL`."""
    if app.docs_url is not None or app.openapi_url != OPENAPI_URL:
        raise ValueError(f"the app needs docs_url=None and openapi_url={OPENAPI_URL!r}")
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="swagger-ui")
