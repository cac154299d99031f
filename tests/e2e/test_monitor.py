"""The web monitor in a real browser, against a live system: what a person sees and does on the job page."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobctl.scheduler.store import accounts
from jobctl.scheduler.store.jobs import SORTS
from jobctl.states import OPERATIONS, JobStatus
from tests.conftest import CI
from tests.e2e.browser import ADMIN_TOKEN, DESKTOP, PHONE, Tab, create_user, sleep_job
from tests.integration.system import System, wait_until

try:
    from playwright.sync_api import expect
except ImportError:  # the dev extras were not installed
    if CI:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "images" / "monitor.png"

OpenTab = Callable[..., Tab]


def duration_text(seconds: float) -> str:
    """What the page shows for a duration under a minute (format.js `formatDuration`)."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{int(seconds)} s"


def test_the_page_its_assets_and_its_config_are_served_without_a_token(system: System, api_url: str) -> None:
    page = httpx.get(f"{api_url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="/static/app.js">' in page.text
    for asset, kind in (("app.js", "javascript"), ("monitor.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        answer = httpx.get(f"{api_url}/static/{asset}")
        assert answer.status_code == 200 and kind in answer.headers["content-type"], asset
    assert httpx.get(f"{api_url}/static/%2e%2e/routes/ui.py").status_code == 404  # nothing outside static/
    config = httpx.get(f"{api_url}/ui/config.json").json()
    assert config["flower_url"] == f"http://127.0.0.1:{system.settings.flower_port}"
    assert config["statuses"] == [s.value for s in JobStatus] and config["sorts"] == list(SORTS)
    assert config["operations"] == [op.value for op in OPERATIONS]  # the page lists none of them itself


def test_another_site_cannot_frame_the_monitor(browser: Any, api_url: str) -> None:
    """A page of another origin that frames the sign-in form (to make a user type a token into it, or click an
    operation through it) gets nothing: the monitor's policy allows no ancestor (`frame-ancestors 'none'`)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        with page.expect_console_message(lambda message: "frame-ancestors" in message.text) as refused:
            page.set_content(f'<iframe id="monitor" src="{api_url}/" width="900" height="600"></iframe>')
        assert "frame-ancestors 'none'" in refused.value.text and api_url in refused.value.text
        framed = [frame for frame in page.frames if frame is not page.main_frame]
        assert framed and all(frame.query_selector('[data-testid="token-input"]') is None for frame in framed)
    finally:
        context.close()


def test_sign_in_keeps_the_token_in_this_tab_only_and_sign_out_forgets_it(
    project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    token = create_user(admin_api, {project: "viewer"})
    tab = open_tab(api_url)
    page = tab.page
    page.goto(api_url + "/")
    expect(page.get_by_test_id("signin")).to_be_visible()
    page.get_by_test_id("token-input").fill("not-a-token")
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("signin-error")).to_have_text("This token is not valid. Check it and try again.")

    tab.sign_in(token)
    expect(page.get_by_test_id("user-role")).to_have_text("viewer")
    assert page.evaluate("sessionStorage.getItem('jobctl.token')") == token
    assert page.evaluate("localStorage.length") == 0
    page.reload()  # the tab keeps its session
    expect(page.get_by_test_id("monitor")).to_be_visible()

    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('jobctl.token')") is None
    assert not any(token in url for url in tab.requests), "the token appeared in a URL"


def test_an_operator_sees_only_their_projects_and_a_job_progressing_live(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    other = system.project()
    hidden = sleep_job(system, other, steps=1, seconds=0)
    token = create_user(admin_api, {project: "operator"})
    tab = open_tab(api_url)
    tab.sign_in(token)
    page = tab.page

    expect(page.get_by_test_id("user-name")).not_to_be_empty()
    expect(page.get_by_test_id("filter-project").locator("option")).to_have_text([project])
    expect(page.get_by_test_id("jobs-table").locator("th", has_text="Project")).to_have_count(0)

    job = sleep_job(system, project, steps=2, seconds=1.5)
    # record every progress value the row shows, from the moment it appears
    page.evaluate(
        """(id) => {
            window.__seen = [];
            const table = document.querySelector('[data-testid="jobs-table"]');
            new MutationObserver(() => {
                const bar = table.querySelector(`[data-job-id="${id}"] [data-testid="row-progress"]`);
                const value = bar && Number(bar.dataset.value);
                if (bar && window.__seen[window.__seen.length - 1] !== value) window.__seen.push(value);
            }).observe(table, { subtree: true, childList: true, attributes: true });
        }""",
        job,
    )
    row = tab.row(job)
    expect(row).to_be_visible()  # a new job appears without a reload
    expect(row.get_by_test_id("row-status")).to_have_text("RUNNING")
    expect(row.get_by_test_id("row-status")).to_have_text("FINISHED")
    expect(row.get_by_test_id("row-progress")).to_have_attribute("data-value", "100.00")

    seen: list[float] = page.evaluate("window.__seen")
    between = [v for v in seen if 0 < v < 100]
    assert len(set(between)) >= 3, f"the progress bar did not move in steps: {seen}"
    assert between[-1] > between[0], f"the progress bar did not advance: {seen}"
    # an event overtaken by a fetch of the job may show a value a moment old, never a real step back
    assert all(b >= a - 2 for a, b in pairwise(between)), f"the progress went back: {seen}"
    assert tab.not_reloaded()
    expect(page.get_by_test_id("job-row")).to_have_count(1)
    expect(tab.row(hidden)).to_have_count(0)
    assert not any(token in url for url in tab.requests), "the token appeared in a URL"


# Markup that would run script or add an element if any of it were parsed as HTML (no "/": a target name
# allows anything else).
HOSTILE = '<img src=x onerror="window.__xss=1"><svg onload="window.__xss=2"><b data-testid="injected">&amp; \'q\''


def test_hostile_strings_are_shown_as_text_and_never_run(dedicated: Callable[..., System], open_tab: OpenTab) -> None:
    """A target name, a job's params, its step's log, error and hint, all full of markup: the monitor shows each
    as the text it is. No script runs, no element appears (and the policy would refuse inline script anyway)."""
    live = dedicated(plugins="tests.integration.testing_jobtypes")
    live.start_scheduler()
    live.start_worker(concurrency=1)
    _, url = live.start_api()
    project = live.project()
    with httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as api:
        put = api.put(f"/projects/{project}/targets/record/{HOSTILE}", json={"attributes": {"note": HOSTILE}})
        assert put.status_code in (200, 201), put.text
        body = {
            "project": project,
            "type": "echo",
            "params": {"text": HOSTILE},
            "target": {"kind": "record", "name": HOSTILE},
        }
        submitted = api.post("/jobs", json=body)
        assert submitted.status_code == 201, submitted.text
        job = submitted.json()["id"]
    live.wait_status(job, "ERROR", timeout=30)

    tab = open_tab(url)
    tab.sign_in(ADMIN_TOKEN)
    page = tab.page
    expect(tab.row(job)).to_contain_text(HOSTILE)  # the target's name, in the list
    tab.row(job).get_by_test_id("row-open").click()
    detail = page.get_by_test_id("detail")
    expect(detail.get_by_test_id("step-error")).to_contain_text(HOSTILE)
    expect(detail.get_by_test_id("detail-meta")).to_contain_text(HOSTILE)
    step = detail.get_by_test_id("step").nth(0)
    step.get_by_test_id("step-log-toggle").click()
    expect(step.get_by_test_id("step-log")).to_contain_text(HOSTILE)
    assert page.evaluate("window.__xss") is None
    assert page.locator('[data-testid="injected"]').count() == 0
    assert page.locator('img[src="x"]').count() == 0 and page.locator("svg[onload]").count() == 0


def test_a_batch_pauses_two_running_jobs_and_resumes_them(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    jobs = [sleep_job(system, project, steps=3, seconds=20) for _ in range(2)]
    for job in jobs:
        system.wait_status(job, "RUNNING")
    tab = open_tab(api_url)
    tab.sign_in(create_user(admin_api, {project: "operator"}))
    page = tab.page

    for job in jobs:
        expect(tab.row(job).get_by_test_id("row-status")).to_have_text("RUNNING")
        tab.row(job).get_by_test_id("row-select").check()
    expect(page.get_by_test_id("batch-count")).to_have_text("2 selected")
    expect(page.get_by_test_id("batch-delete")).to_be_disabled()  # no selected job allows it

    page.get_by_test_id("batch-pause").click()
    for job in jobs:
        expect(tab.row(job).get_by_test_id("row-status")).to_have_text("PAUSED")
        expect(tab.row(job).get_by_test_id("action-resume")).to_be_visible()
        assert system.job(job).status.value == "PAUSED"
    expect(page.get_by_test_id("message").first).to_contain_text("Paused 2 jobs")

    page.get_by_test_id("batch-resume").click()  # the selection outlives the batch
    for job in jobs:
        expect(tab.row(job).get_by_test_id("row-status")).to_have_text("RUNNING")
    assert tab.not_reloaded()


def test_a_refused_action_is_not_offered_and_a_stale_page_shows_the_refusal(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    job = sleep_job(system, project, steps=1, seconds=4)
    system.wait_status(job, "RUNNING")
    tab = open_tab(api_url)
    tab.page.route("**/api/v1/events*", lambda route: route.abort())  # no live updates: the page goes stale
    tab.sign_in(create_user(admin_api, {project: "operator"}))
    page = tab.page
    row = tab.row(job)

    expect(row.get_by_test_id("row-status")).to_have_text("RUNNING")
    expect(row.get_by_test_id("action-pause")).to_be_visible()
    for refused in ("resume", "delete"):
        expect(row.get_by_test_id(f"action-{refused}")).to_have_count(0)

    system.wait_status(job, "FINISHED")
    expect(row.get_by_test_id("row-status")).to_have_text("RUNNING")  # stale
    row.get_by_test_id("action-pause").click()

    message = page.get_by_test_id("message").filter(has_text="Could not pause")
    expect(message).to_be_visible()
    expect(message).to_contain_text(re.compile(r"cannot pause a job that is FINISHED", re.IGNORECASE))
    expect(message).to_have_attribute("data-kind", "error")
    # the refusal refreshed the row: it shows what the job allows now
    expect(row.get_by_test_id("row-status")).to_have_text("FINISHED")
    expect(row.get_by_test_id("action-delete")).to_be_visible()
    expect(row.get_by_test_id("action-pause")).to_have_count(0)


def test_the_detail_panel_shows_steps_with_durations_logs_and_flower(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    job = sleep_job(system, project, steps=3, seconds=0.4)
    system.wait_status(job, "FINISHED")
    shown = admin_api.get(f"/jobs/{job}").json()
    tab = open_tab(api_url)
    tab.sign_in(create_user(admin_api, {project: "viewer"}))
    page = tab.page

    tab.row(job).get_by_test_id("row-open").click()
    detail = page.get_by_test_id("detail")
    expect(detail).to_be_visible()
    expect(detail.get_by_test_id("detail-full-id")).to_have_text(job)
    expect(detail.get_by_test_id("detail-status")).to_have_text("FINISHED")
    expect(detail.get_by_test_id("detail-action-delete")).to_have_count(0)  # a viewer operates nothing
    steps = detail.get_by_test_id("step")
    expect(steps).to_have_count(3)
    for step in shown["steps"]:
        item = steps.nth(step["index"])
        expect(item.get_by_test_id("step-name")).to_contain_text(step["name"])
        expect(item.get_by_test_id("step-status")).to_have_text("FINISHED")
        expect(item.get_by_test_id("step-duration")).to_have_text(duration_text(step["duration_s"]))
        expect(item.get_by_test_id("step-waiting")).to_have_text(duration_text(step["waiting_s"]))

    first = steps.nth(0)
    first.get_by_test_id("step-log-toggle").click()
    log = first.get_by_test_id("step-log")
    expect(log).to_be_visible()
    expect(log).to_contain_text("sleeping")
    expect(log).to_contain_text("done")

    with page.expect_download() as download:
        first.get_by_test_id("step-log-download").click()
    saved = download.value
    assert saved.suggested_filename == f"job-{job}-step-1-{shown['steps'][0]['name']}.log"
    assert "done" in Path(saved.path()).read_text()

    flower = f"http://127.0.0.1:{system.settings.flower_port}/tasks?search={job}"
    expect(detail.get_by_test_id("flower-link")).to_have_attribute("href", flower)
    expect(detail.get_by_test_id("history")).to_contain_text("finish")

    detail.get_by_test_id("detail-close").click()
    expect(detail).to_be_hidden()
    assert not any("token" in url or "Bearer" in url for url in tab.requests)


def test_an_admin_batch_discards_jobs_of_two_projects_after_confirming(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    other = system.project()
    tag = uuid.uuid4().hex[:8]
    jobs = {}
    for name in (project, other):
        target = f"e2e-{tag}-{name}"
        system.svc.ops.put_target(name, "record", target, {})
        jobs[name] = system.submit(name, params={"steps": 2, "seconds": 30}, target=("record", target)).id
    tab = open_tab(api_url)
    tab.sign_in(ADMIN_TOKEN)
    page = tab.page

    expect(page.get_by_test_id("filter-project")).to_have_value("")  # All projects
    expect(page.get_by_test_id("jobs-table").locator("th", has_text="Project")).to_be_visible()
    page.get_by_test_id("filter-q").fill(tag)
    rows = page.get_by_test_id("job-row")
    expect(rows).to_have_count(2)
    assert sorted(rows.get_by_test_id("row-project").all_inner_texts()) == sorted([project, other])

    page.get_by_test_id("select-all").check()
    expect(page.get_by_test_id("batch-count")).to_have_text("2 selected")
    dialog = page.get_by_test_id("confirm-dialog")

    page.get_by_test_id("batch-discard").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("cannot be undone")
    page.get_by_test_id("confirm-cancel").click()
    expect(dialog).to_be_hidden()
    assert all(system.job(job).status.value != "DISCARDED" for job in jobs.values())

    page.get_by_test_id("batch-discard").click()
    page.get_by_test_id("confirm-ok").click()
    for job in jobs.values():
        expect(tab.row(job).get_by_test_id("row-status")).to_have_text("DISCARDED")
        assert system.job(job).status.value == "DISCARDED"
    expect(page.get_by_test_id("message").first).to_contain_text("Discarded 2 jobs")


def test_filters_sorting_and_paging(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    jobs = []
    for _ in range(12):
        job = sleep_job(system, project, steps=1, seconds=60)
        system.op(job, "pause")
        jobs.append(job)
    finished = sleep_job(system, project, steps=1, seconds=0)
    system.wait_status(finished, "FINISHED")
    tab = open_tab(api_url)
    tab.sign_in(create_user(admin_api, {project: "operator"}))
    page = tab.page
    rows = page.get_by_test_id("job-row")

    page.get_by_test_id("page-size").select_option("10")
    expect(page.get_by_test_id("pager-info")).to_have_text("1\u201310 of 13 jobs")
    expect(rows).to_have_count(10)
    expect(rows.first).to_have_attribute("data-job-id", finished)  # newest first
    page.get_by_test_id("page-next").click()
    expect(page.get_by_test_id("pager-info")).to_have_text("11\u201313 of 13 jobs")
    expect(rows).to_have_count(3)

    page.get_by_test_id("sort-created_at").click()  # now oldest first
    expect(page.locator("th", has=page.get_by_test_id("sort-created_at"))).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_test_id("pager-info")).to_have_text("1\u201310 of 13 jobs")
    expect(rows.first).to_have_attribute("data-job-id", jobs[0])

    page.get_by_test_id("filter-status-FINISHED").click()
    expect(page.get_by_test_id("filter-status-FINISHED")).to_have_attribute("aria-pressed", "true")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", finished)
    page.get_by_test_id("filter-clear").click()
    expect(rows).to_have_count(10)

    page.get_by_test_id("filter-q").fill(jobs[3][:12])
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", jobs[3])
    page.get_by_test_id("filter-q").fill("")
    types = sorted(t["name"] for t in admin_api.get("/types").json())
    offered = page.locator("#f-type-list option")  # the server's job types, though no file_digest job is listed
    expect(offered).to_have_count(len(types))
    assert [offered.nth(i).get_attribute("value") for i in range(len(types))] == types
    page.get_by_test_id("filter-type").fill("file_digest")
    expect(page.get_by_test_id("empty")).to_contain_text("No jobs match these filters")
    page.get_by_test_id("filter-type").fill("sleep")
    page.get_by_test_id("filter-period").select_option("day")
    expect(page.get_by_test_id("pager-info")).to_have_text("1\u201310 of 13 jobs")


def test_screenshots_at_desktop_and_phone_sizes_without_horizontal_overflow(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the screenshots are taken once, on SQLite")
    live, url = request.getfixturevalue("showcase")
    open_tab: OpenTab = request.getfixturevalue("open_tab")  # after the system: its tabs close before it stops
    jobs = populate(live)
    tab = open_tab(url, DESKTOP)
    tab.sign_in(ADMIN_TOKEN)
    page = tab.page
    expect(page.get_by_test_id("job-row")).to_have_count(len(jobs))
    for job in jobs.values():  # every job in its final pose, as the live updates have it
        expect(tab.row(job).get_by_test_id("row-status")).to_have_text(live.job(job).status.value)
    for name in ("quarterly-orders", "churn-model"):
        tab.row(jobs[name]).get_by_test_id("row-select").check()
    page.mouse.move(0, 0)
    page.screenshot(path=str(tmp_path / "desktop.png"))
    # For the README (every state, down to the pager): rewritten only when asked, so a test run leaves the
    # clone as it was.
    readme = SCREENSHOT if os.environ.get("JOBCTL_UPDATE_SCREENSHOT") == "1" else tmp_path / "monitor.png"
    page.screenshot(path=str(readme), full_page=True)
    width, inner = tab.overflow()
    assert width <= inner, f"the page overflows at 1280x800: {width} > {inner}"

    tab.row(jobs["quarterly-orders"]).get_by_test_id("row-open").click()
    expect(page.get_by_test_id("step")).to_have_count(4)
    page.screenshot(path=str(tmp_path / "desktop-detail.png"))
    width, inner = tab.overflow()
    assert width <= inner, f"the detail panel overflows at 1280x800: {width} > {inner}"

    phone = open_tab(url, PHONE)
    phone.sign_in(ADMIN_TOKEN)
    expect(phone.page.get_by_test_id("job-row")).to_have_count(len(jobs))
    phone.page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    width, inner = phone.overflow()
    assert width <= inner, f"the page overflows at 390x844: {width} > {inner}"
    phone.row(jobs["quarterly-orders"]).get_by_test_id("row-open").click()
    expect(phone.page.get_by_test_id("step")).to_have_count(4)
    phone.page.get_by_test_id("step-log-toggle").first.click()
    expect(phone.page.get_by_test_id("step-log").first).to_contain_text("sleeping")
    phone.page.screenshot(path=str(tmp_path / "phone-detail.png"))
    width, inner = phone.overflow()
    assert width <= inner, f"the detail panel overflows at 390x844: {width} > {inner}"


def populate(live: System) -> dict[str, str]:
    """Jobs in every state, in three projects, for the screenshots; returns name -> job id."""
    for project in ("sales-etl", "ml-training", "reporting"):
        with live.svc.db.write() as s:
            accounts.create_project(s, project, None)
    for name in ("orders_2024_q3", "orders_2024_q4", "customers"):
        live.svc.ops.put_target("sales-etl", "record", name, {"rows": 1})
    jobs: dict[str, str] = {}

    def submit(name: str, project: str, target: str | None = None, **params: object) -> str:
        record = ("record", target) if target else None
        jobs[name] = live.submit(project, params=params, target=record).id
        return jobs[name]

    for name in ("daily-report", "weekly-report"):
        submit(name, "reporting", steps=2, seconds=0.2)
    submit("feature-build", "ml-training", steps=3, seconds=0.2, fail_at=1)
    for name in ("daily-report", "weekly-report"):
        live.wait_status(jobs[name], "FINISHED")
    live.wait_status(jobs["feature-build"], "ERROR")
    stale = submit("customers-export", "sales-etl", "customers", steps=2, seconds=30)
    live.op(stale, "discard")
    paused = submit("hyperparameter-sweep", "ml-training", steps=4, seconds=30)
    live.wait_step_running(paused, 0, min_progress=1)
    live.op(paused, "pause")
    submit("quarterly-orders", "sales-etl", "orders_2024_q3", steps=4, seconds=2.5)
    submit("orders-q4", "sales-etl", "orders_2024_q4", steps=5, seconds=20)
    submit("churn-model", "ml-training", steps=3, seconds=12)
    submit("monthly-report", "reporting", steps=2, seconds=40)
    submit("backfill", "reporting", steps=6, seconds=30)  # waits: the worker has 4 processes
    live.wait_step_running(jobs["quarterly-orders"], 1, min_progress=20)
    wait_until(lambda: live.job(jobs["backfill"]).status.value == "PENDING", 5, "the backlog to wait")
    return jobs
