"""The monitor's dashboard in a real browser, against a live system: the tab, the jobs by status, the chart of
jobs finished and failed per day and the slowest job types, each with the figures of known jobs - under the
page's Content Security Policy (the `open_tab` fixture fails a test on any violation or script error).

The jobs are made straight in the database (`tests.api.stats_seed`) in states no scheduler moves (FINISHED,
ERROR, DISCARDED, PAUSED), so the live system leaves them as they are.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobctl.scheduler.store import accounts
from jobctl.states import JobStatus as S
from tests.api.stats_seed import Seeded, midnight, seed
from tests.conftest import CI
from tests.e2e.browser import ADMIN_TOKEN, DESKTOP, PHONE, Tab, create_user
from tests.integration.system import System

try:
    from playwright.sync_api import expect
except ImportError:  # the dev extras were not installed
    if CI:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "dashboard.png"

OpenTab = Callable[..., Tab]


def open_dashboard(tab: Tab) -> Any:
    """Go to the dashboard by its tab and wait until its figures are shown; the page."""
    page = tab.page
    page.get_by_test_id("tab-dashboard").click()
    expect(page.get_by_test_id("dashboard")).to_be_visible()
    expect(page.get_by_test_id("stat-total-value")).not_to_be_empty()
    expect(page.get_by_test_id("jobs-table")).to_be_hidden()
    return page


def test_the_dashboard_shows_the_figures_of_a_viewers_project(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    d0 = midnight(5)
    old, noon = d0 + timedelta(hours=1), timedelta(hours=12)
    day = [d0 + timedelta(days=n) + noon for n in range(6)]
    seed(
        system.svc.db,
        project,
        [
            Seeded("export", S.FINISHED, old, 10, 1, finished_at=day[1]),
            Seeded("export", S.FINISHED, old, 20, 2, finished_at=day[1]),
            Seeded("export", S.FINISHED, old, 60, 3, finished_at=day[2]),
            Seeded("export", S.ERROR, old, 4, 0, failures=(day[2],)),
            Seeded("digest", S.FINISHED, old, 5, 0.5, finished_at=day[1]),
            Seeded("digest", S.DISCARDED, old),
            Seeded("digest", S.PAUSED, datetime.now(UTC) - timedelta(hours=1)),
        ],
    )
    token = create_user(admin_api, {project: "viewer"})
    tab = open_tab(api_url)
    tab.sign_in(token)
    page = open_dashboard(tab)
    expect(page.locator("#monitor-title")).to_have_text("Dashboard")
    assert page.evaluate("location.hash") == "#dashboard"

    expect(page.get_by_test_id("stat-total-value")).to_have_text("7")
    counts = {"PENDING": 0, "RUNNING": 0, "PAUSED": 1, "ERROR": 1, "DISCARDED": 1, "FINISHED": 4}
    for status, n in counts.items():
        expect(page.get_by_test_id(f"stat-{status}-value")).to_have_text(str(n))
    expect(page.get_by_test_id("dash-caption")).to_have_text(f"7 jobs created at any time, in {project}.")

    # one bar a day from the first day with an outcome to today: 3 finished; 1 finished and 1 failed; then none
    bars = page.get_by_test_id("chart-day")
    expect(bars).to_have_count(5)
    shown = [
        (
            bars.nth(i).get_attribute("data-day"),
            bars.nth(i).get_attribute("data-finished"),
            bars.nth(i).get_attribute("data-failed"),
        )
        for i in range(5)
    ]
    days = [(d0 + timedelta(days=n)).date().isoformat() for n in range(1, 6)]
    assert shown == [(days[0], "3", "0"), (days[1], "1", "1"), *[(d, "0", "0") for d in days[2:]]]
    assert bars.nth(0).locator("rect.bar-finished").count() == 1 and bars.nth(0).locator("rect.bar-failed").count() == 0
    assert bars.nth(1).locator("rect.bar-failed").count() == 1
    heights = [float(bars.nth(i).locator("rect.bar-finished").get_attribute("height") or 0) for i in range(2)]
    assert heights[0] == pytest.approx(3 * heights[1])  # bars to scale
    expect(bars.nth(1).locator("title")).to_have_text(f"{days[1]}: 1 finished, 1 failed")
    expect(page.get_by_test_id("legend-finished")).to_have_text("4")
    expect(page.get_by_test_id("legend-failed")).to_have_text("1")

    rows = page.get_by_test_id("slow-type")
    expect(rows).to_have_count(2)
    # export: runs 10, 20, 60 s -> p50 20 s, p95 at rank 1.9: 20 + 40 * 0.9 = 56 s; waits 1, 2, 3 -> 2.0 s, 2.9 s
    expect(rows.nth(0).locator("th, td")).to_have_text(["export", "4", "3", "20 s", "56 s", "2.0 s", "2.9 s"])
    expect(rows.nth(1).locator("th, td")).to_have_text(["digest", "3", "1", "5.0 s", "5.0 s", "0.5 s", "0.5 s"])

    page.get_by_test_id("filter-period").select_option("day")  # the filters apply: only the paused job is new
    expect(page.get_by_test_id("stat-total-value")).to_have_text("1")
    expect(page.get_by_test_id("chart-empty")).to_be_visible()
    expect(rows.nth(0).locator("th, td")).to_have_text(["digest", "1", "0", "\u2014", "\u2014", "\u2014", "\u2014"])

    page.reload()  # the address keeps the view
    expect(page.get_by_test_id("dashboard")).to_be_visible()
    expect(page.get_by_test_id("stat-total-value")).to_have_text("7")  # the filters start afresh
    page.get_by_test_id("tab-jobs").click()
    expect(page.get_by_test_id("jobs-table")).to_be_visible()
    expect(page.get_by_test_id("dashboard")).to_be_hidden()
    expect(page.get_by_test_id("job-row")).to_have_count(7)
    assert any("/api/v1/stats" in url for url in tab.requests)
    assert not any(token in url for url in tab.requests), "the token appeared in a URL"


def showcase_jobs(now: datetime) -> dict[str, list[Seeded]]:
    """Two weeks of jobs in three projects, for the screenshot: project -> jobs."""
    rng = random.Random(20260501)
    kinds = {  # type -> (project, typical running s, typical waiting s, share failing)
        "nightly-export": ("sales-etl", 340, 4, 0.05),
        "orders-sync": ("sales-etl", 45, 1.5, 0.02),
        "train-model": ("ml-training", 2400, 30, 0.12),
        "feature-build": ("ml-training", 620, 12, 0.08),
        "monthly-report": ("reporting", 95, 2, 0.03),
        "file_digest": ("reporting", 8, 0.4, 0.01),
    }
    jobs: dict[str, list[Seeded]] = {}
    for days_ago in range(13, -1, -1):
        start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
        for job_type, (project, run_s, wait_s, failing) in kinds.items():
            for _ in range(rng.randint(1, 5)):
                created = start + timedelta(minutes=rng.uniform(0, 20 * 60))
                if created > now - timedelta(minutes=30):
                    created = now - timedelta(minutes=rng.uniform(40, 90))
                duration = round(run_s * rng.lognormvariate(0, 0.35), 2)
                waiting = round(wait_s * rng.lognormvariate(0, 0.6), 2)
                ended = min(created + timedelta(seconds=duration + waiting), now)
                roll = rng.random()
                if roll < failing:
                    job = Seeded(job_type, S.ERROR, created, duration / 2, waiting, failures=(ended,))
                elif roll < failing + 0.02:
                    job = Seeded(job_type, S.DISCARDED, created, duration / 3, waiting)
                else:
                    job = Seeded(job_type, S.FINISHED, created, duration, waiting, finished_at=ended)
                jobs.setdefault(project, []).append(job)
    jobs["ml-training"].append(Seeded("train-model", S.RUNNING, now - timedelta(minutes=20), 1100, 25))
    jobs["ml-training"].append(Seeded("train-model", S.PAUSED, now - timedelta(hours=3), 800, 30))
    jobs["reporting"].append(Seeded("monthly-report", S.PENDING, now - timedelta(minutes=2)))
    return jobs


def test_dashboard_screenshots_at_desktop_and_phone_sizes_without_horizontal_overflow(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the screenshots are taken once, on SQLite")
    dedicated: Callable[..., System] = request.getfixturevalue("dedicated")
    live = dedicated()  # an API over a database of its own (no scheduler: the jobs stay as they are made)
    _, url = live.start_api()
    open_tab: OpenTab = request.getfixturevalue("open_tab")  # after the system: its tabs close before it stops
    now = datetime.now(UTC)
    for project, jobs in showcase_jobs(now).items():
        with live.svc.db.write() as s:
            accounts.create_project(s, project, None)
        seed(live.svc.db, project, jobs)

    tab = open_tab(url, DESKTOP)
    tab.sign_in(ADMIN_TOKEN)
    page = open_dashboard(tab)
    expect(page.get_by_test_id("chart-day")).to_have_count(14)
    expect(page.get_by_test_id("slow-type")).to_have_count(6)
    expect(page.get_by_test_id("slow-type-name").first).to_have_text("train-model")
    page.mouse.move(0, 0)
    # For the README: rewritten only when asked, so a test run leaves the clone as it was.
    readme = SCREENSHOT if os.environ.get("JOBCTL_UPDATE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(readme), full_page=True)
    width, inner = tab.overflow()
    assert width <= inner, f"the dashboard overflows at 1280x800: {width} > {inner}"

    phone = open_tab(url, PHONE)
    phone.sign_in(ADMIN_TOKEN)
    open_dashboard(phone)
    expect(phone.page.get_by_test_id("chart-day")).to_have_count(14)
    phone.page.screenshot(path=str(tmp_path / "phone-dashboard.png"), full_page=True)
    width, inner = phone.overflow()
    assert width <= inner, f"the dashboard overflows at 390x844: {width} > {inner}"
    chart_width = float(phone.page.get_by_test_id("chart").get_attribute("width") or 0)
    assert 0 < chart_width <= PHONE["width"], "the chart is drawn at the phone's width"
