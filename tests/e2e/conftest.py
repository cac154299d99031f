"""Browser tests of the web monitor: Playwright (sync API) driving Debian's chromium against a live system.

The live-system fixtures are the integration tier's (a real uvicorn API in front of a scheduler and a prefork
worker). `make test` runs them on SQLite only (`ONE_BACKEND` in tests/conftest.py: the page is the same, and the
API under it is tested on both); `-k postgresql` runs them on PostgreSQL. No browser is ever downloaded:
chromium must be installed (`apt-get install chromium`); without it these tests are skipped locally and fail
under CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts
from tests.conftest import missing
from tests.e2e.browser import ADMIN_TOKEN, DESKTOP, TIMEOUT_MS, Tab
from tests.integration.conftest import dedicated, project  # noqa: F401
from tests.integration.system import System
from tests.live import api_url, live_system  # noqa: F401 - api_url re-declared here: it serves this folder's `system`

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def system(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The browser tests' own live system, apart from the integration tests' one."""
    yield from live_system(settings, backend, tmp_path_factory, "e2e")


def chromium_path() -> str | None:
    """Debian's chromium (or `JOBCTL_CHROMIUM`), if installed."""
    for candidate in (os.environ.get("JOBCTL_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the session."""
    path = chromium_path()
    if path is None:
        missing("chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_tab(browser: Any) -> Iterator[Callable[..., Tab]]:
    """A factory of fresh browser tabs, each in its own context (so its own sessionStorage).

    After the test, any JavaScript error a tab raised fails it, and so does anything the page's Content Security
    Policy refused (the browser reports it on the console): the monitor must work under the policy.
    """
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    contexts: list[Any] = []
    tabs: list[Tab] = []

    def make(base_url: str, viewport: dict[str, int] | None = None) -> Tab:
        context = browser.new_context(viewport=viewport or DESKTOP, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        tab = Tab(page, base_url)
        page.on("request", lambda request: tab.requests.append(request.url))
        page.on("pageerror", lambda error: tab.errors.append(str(error)))
        page.on("console", lambda message: _csp_violation(tab, message))
        tabs.append(tab)
        return tab

    yield make
    for context in contexts:
        context.close()
    for tab in tabs:
        assert not tab.errors, f"JavaScript errors on the page: {tab.errors}"


def _csp_violation(tab: Tab, message: Any) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        tab.errors.append(message.text)


@pytest.fixture
def admin_api(api_url: str) -> Iterator[httpx.Client]:  # noqa: F811 - pytest passes the imported fixture
    """An HTTP client of the shared system's API with the admin's token."""
    with httpx.Client(
        base_url=f"{api_url}/api/v1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def showcase(dedicated: Callable[..., System]) -> Iterator[tuple[System, str]]:  # noqa: F811
    """A system of its own (database, queue, scheduler, 4-process worker, API), so a screenshot shows only
    the jobs its test made. Yields the system and its API's base URL; afterwards discards what still runs, so
    the worker stops at once."""
    live = dedicated()
    live.start_scheduler()
    live.start_worker(concurrency=4)
    _, url = live.start_api()
    yield live, url
    with live.svc.db.read() as s:
        for project in accounts.list_projects(s):
            live.settle(project.name)
