"""Swagger UI at `/docs` in a real browser, against a live API: it renders the API's operations from jobctl's own
origin only, under the page's Content-Security-Policy (any violation fails the test, see `open_tab`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import CI
from tests.e2e.browser import Tab

try:
    from playwright.sync_api import expect
except ImportError:  # the dev extras were not installed
    if CI:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

pytestmark = pytest.mark.integration


def test_swagger_ui_renders_the_operations_from_this_origin_only(api_url: str, open_tab: Callable[..., Tab]) -> None:
    tab = open_tab(api_url)
    page = tab.page
    page.goto(api_url + "/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/jobs").first).to_be_visible()
    assert page.locator(".opblock").count() > 10  # every operation, not only the first
    assert page.evaluate("typeof window.SwaggerUIBundle") == "function"
    assert tab.requests and all(url.startswith(api_url + "/") for url in tab.requests), tab.requests
    assert not tab.errors, tab.errors  # no script error and no refusal by the policy
