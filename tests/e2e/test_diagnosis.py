"""Why it is stuck and what went wrong, in a real browser against a live system with the test job types
(tests/integration/testing_jobtypes.py): a failed step's code, message and "How to fix" hint, a step's info (text,
and http(s) URLs as links that open apart from the monitor), the reason a PENDING job waits in the list and in the
detail panel, and the list's error-code filter. On SQLite it also takes the detail panel's screenshot for the
docs (docs/images/detail-panel.png, rewritten only with JOBCTL_UPDATE_SCREENSHOT=1)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from jobctl.scheduler.settings import Settings
from tests.conftest import CI
from tests.e2e.browser import ADMIN_TOKEN, Tab, create_user
from tests.integration.system import System
from tests.live import live_system

try:
    from playwright.sync_api import expect
except ImportError:  # the dev extras were not installed
    if CI:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "detail-panel.png"
PLUGINS = "tests.integration.testing_jobtypes"
#: Markup that would add an element or run script if any of it were parsed as HTML.
HOSTILE = '<img src=x onerror="window.__xss=1"><b data-testid="injected">&amp; \'q\'</b>'
#: A viewport tall enough for the detail panel's steps.
TALL = {"width": 1280, "height": 1560}

OpenTab = Callable[..., Tab]


@pytest.fixture(scope="module")
def served(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[System, str]]:
    """A system of this module's own with the test job types (a scheduler, a 2-process worker), and its API's
    base URL."""
    name = f"e2e-diagnosis-{uuid.uuid4().hex[:6]}"
    for live in live_system(settings, backend, tmp_path_factory, name, plugins=PLUGINS):
        _, url = live.start_api()
        yield live, url


@pytest.fixture
def live(served: tuple[System, str]) -> System:
    return served[0]


@pytest.fixture
def url(served: tuple[System, str]) -> str:
    return served[1]


@pytest.fixture
def api(url: str) -> Iterator[httpx.Client]:
    """The API as the admin."""
    with httpx.Client(
        base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def project(live: System) -> Iterator[str]:
    """A fresh project; what it still has going is discarded afterwards."""
    name = live.project()
    yield name
    live.settle(name)


def submit(api: httpx.Client, project: str, job_type: str, **body: object) -> str:
    answer = api.post("/jobs", json={"project": project, "type": job_type, **body})
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def test_a_failed_step_shows_how_to_fix_it_and_its_info(
    live: System, url: str, api: httpx.Client, project: str, open_tab: OpenTab
) -> None:
    job = submit(api, project, "diagnose", params={"how": "step_failed", "note": HOSTILE})
    live.wait_status(job, "ERROR", timeout=30)
    tab = open_tab(url)
    tab.sign_in(create_user(api, {project: "viewer"}))
    page = tab.page
    tab.row(job).get_by_test_id("row-open").click()
    detail = page.get_by_test_id("detail")

    expect(detail.get_by_test_id("detail-error-code")).to_have_text("table-locked")
    step = detail.get_by_test_id("step").nth(0)
    error = step.get_by_test_id("step-error")
    expect(error.get_by_test_id("step-error-code")).to_have_text("table-locked")
    expect(error.get_by_test_id("step-error-message")).to_have_text("the export table is locked")
    expect(error.get_by_test_id("step-hint")).to_contain_text("How to fix")
    expect(error.get_by_test_id("step-hint-text")).to_have_text("wait for the nightly load to end")

    info = step.get_by_test_id("step-info")
    keys = ["rows", "app_id", "done", "app_url", "script", "ratio", "note"]
    expect(info.get_by_test_id("step-info-key")).to_have_text(keys)
    expect(info.get_by_test_id("step-info-value")).to_have_text(
        [
            "1200",
            "application_1714",
            "true",
            "https://spark.example.com/app/1714",
            "javascript:alert(1)",
            "0.5",
            HOSTILE,
        ]
    )
    links = info.get_by_test_id("step-info-link")
    expect(links).to_have_count(1)  # the https URL only: `javascript:` is text
    expect(links).to_have_attribute("href", "https://spark.example.com/app/1714")
    expect(links).to_have_attribute("target", "_blank")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    assert page.evaluate("window.__xss") is None
    assert page.locator('[data-testid="injected"]').count() == 0 and page.locator('img[src="x"]').count() == 0


def test_a_pending_job_says_what_it_waits_for_in_the_list_and_the_panel(
    live: System, url: str, api: httpx.Client, project: str, open_tab: OpenTab
) -> None:
    assert api.patch(f"/projects/{project}", json={"max_running": 1}).status_code == 200
    running = submit(api, project, "diagnose", params={"how": "wait", "seconds": 60})
    live.wait_status(running, "RUNNING")
    tab = open_tab(url)
    tab.sign_in(create_user(api, {project: "operator"}))
    page = tab.page

    waiting = submit(api, project, "diagnose", params={"how": "wait", "seconds": 60})
    row = tab.row(waiting)
    expect(row.get_by_test_id("row-status")).to_have_text("PENDING")  # the new job appears without a reload
    expect(row.get_by_test_id("row-waiting")).to_have_text("project limit 1/1")
    expect(row.get_by_test_id("row-waiting")).to_have_attribute("title", "Waiting for: project limit 1/1")
    expect(tab.row(running).get_by_test_id("row-waiting")).to_have_count(0)

    row.get_by_test_id("row-open").click()
    detail = page.get_by_test_id("detail")
    expect(detail.get_by_test_id("detail-waiting-for")).to_contain_text("Waiting for")
    expect(detail.get_by_test_id("detail-waiting-for-text")).to_have_text("project limit 1/1")

    assert api.post(f"/jobs/{running}/discard").status_code == 200
    expect(row.get_by_test_id("row-status")).to_have_text("RUNNING")  # live: its project's slot came free
    expect(row.get_by_test_id("row-waiting")).to_have_count(0)
    expect(detail.get_by_test_id("detail-waiting-for")).to_have_count(0)
    assert tab.not_reloaded()


def test_the_list_filters_by_error_code(
    live: System, url: str, api: httpx.Client, project: str, open_tab: OpenTab
) -> None:
    locked = submit(api, project, "diagnose", params={"how": "step_failed"})
    broken = submit(api, project, "diagnose", params={"how": "exception"})
    fine = submit(api, project, "diagnose", params={"how": "finish"})
    for job, status in ((locked, "ERROR"), (broken, "ERROR"), (fine, "FINISHED")):
        live.wait_status(job, status, timeout=30)
    tab = open_tab(url)
    tab.sign_in(create_user(api, {project: "viewer"}))
    page = tab.page
    rows = page.get_by_test_id("job-row")
    expect(rows).to_have_count(3)

    page.get_by_test_id("filter-error-code").fill("table-locked")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", locked)
    page.get_by_test_id("filter-error-code").fill("exception")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", broken)
    page.get_by_test_id("filter-error-code").fill("no-such-code")
    expect(page.get_by_test_id("empty")).to_contain_text("No jobs match these filters")
    page.get_by_test_id("filter-clear").click()
    expect(page.get_by_test_id("filter-error-code")).to_have_value("")
    expect(rows).to_have_count(3)


def test_screenshots_of_the_detail_panel_with_a_failed_step(
    backend: str, live: System, url: str, api: httpx.Client, project: str, open_tab: OpenTab, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the screenshot is taken once, on SQLite")
    job = submit(api, project, "pipeline")
    live.wait_status(job, "ERROR", timeout=30)
    tab = open_tab(url, TALL)
    tab.sign_in(ADMIN_TOKEN)
    page = tab.page
    tab.row(job).get_by_test_id("row-open").click()
    detail = page.get_by_test_id("detail")
    steps = detail.get_by_test_id("step")
    expect(steps).to_have_count(3)
    expect(steps.nth(0).get_by_test_id("step-info")).to_contain_text("s3://exports/orders/2026-05-01/")
    expect(steps.nth(1).get_by_test_id("step-hint")).to_contain_text("How to fix")
    expect(steps.nth(1).get_by_test_id("step-info")).to_contain_text("wh-7f3a9c")
    expect(detail.get_by_test_id("history")).to_contain_text("fail")
    page.mouse.move(0, 0)  # no hover styles in the picture; the element screenshot scrolls to the panel itself
    # For the docs: rewritten only when asked, so a test run leaves the clone as it was.
    target = SCREENSHOT if os.environ.get("JOBCTL_UPDATE_SCREENSHOT") == "1" else tmp_path / "detail-panel.png"
    detail.screenshot(path=str(target))
    assert target.stat().st_size > 10_000
    width, inner = tab.overflow()
    assert width <= inner, f"the detail panel overflows at 1280x1560: {width} > {inner}"
