"""The web monitor in a real browser, against a live system: fixing a failed job's params and resuming it, the
diagnostic bundle's download, and the preview a batch over every job matching the filters gives before it runs
(docs/contract.md §7)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from jobctl.states import JobStatus
from tests.e2e.browser import ADMIN_TOKEN, Tab, create_user, sleep_job
from tests.integration.system import System

try:
    from playwright.sync_api import expect
except ImportError:  # the dev extras were not installed
    from tests.conftest import CI

    if CI:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

pytestmark = pytest.mark.integration

OpenTab = Callable[..., Tab]


def fill(tab: Tab, text: str) -> None:
    """Replace the params editor's text and save it."""
    area = tab.page.get_by_test_id("edit-params-text")
    area.fill(text)
    tab.page.get_by_test_id("edit-params-save").click()


def test_a_failed_job_is_fixed_in_the_detail_panel_and_resumed(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    job = sleep_job(system, project, steps=3, seconds=0.2, fail_at=1)
    system.wait_status(job, "ERROR")
    tab = open_tab(api_url)
    tab.sign_in(create_user(admin_api, {project: "operator"}))
    page = tab.page
    tab.row(job).get_by_test_id("row-open").click()
    detail = page.get_by_test_id("detail")
    expect(detail.get_by_test_id("detail-status")).to_have_text("ERROR")
    expect(detail.get_by_test_id("detail-params")).to_contain_text('"fail_at": 1')
    expect(detail.get_by_test_id("history")).to_contain_text("fail")

    detail.get_by_test_id("edit-params").click()
    area = detail.get_by_test_id("edit-params-text")
    expect(area).to_be_focused()
    assert json.loads(area.input_value())["fail_at"] == 1  # it starts from the job's params

    fill(tab, "{not json")
    error = detail.get_by_test_id("edit-params-error")
    expect(error).to_contain_text("This is not valid JSON")
    fill(tab, "[1, 2]")
    expect(error).to_have_text('The params must be a JSON object, such as {"steps": 3}.')

    hostile = '<img src=x onerror="window.__pwned=1">'
    fill(tab, json.dumps({"steps": 3, "seconds": -1, hostile: 1}))
    expect(error).to_contain_text("invalid params for job type 'sleep'")  # the server's own words, as text
    expect(error).to_contain_text(hostile)
    assert detail.locator("img").count() == 0 and page.evaluate("window.__pwned === undefined")
    expect(area).to_be_visible()  # still editing: nothing was changed
    assert system.job(job).params["fail_at"] == 1

    fill(tab, json.dumps({"steps": 4, "seconds": 0.3}))
    expect(error).to_contain_text("these params plan other steps")
    fill(tab, json.dumps({"steps": 3, "seconds": 0.3, "fail_at": None}))
    expect(detail.get_by_test_id("edit-params-form")).to_have_count(0)
    expect(detail.get_by_test_id("detail-params")).to_contain_text('"fail_at": null')
    expect(page.get_by_test_id("message").first).to_contain_text("Saved the params")
    changes = detail.get_by_test_id("history-changes")
    expect(changes).to_contain_text("fail_at: 1 \u2192 null")
    expect(changes).to_contain_text("seconds: 0.2 \u2192 0.3")
    expect(detail.get_by_test_id("detail-status")).to_have_text("ERROR")  # edited, not resumed yet
    assert system.job(job).params["seconds"] == 0.3

    detail.get_by_test_id("detail-action-resume").click()
    expect(detail.get_by_test_id("detail-status")).to_have_text("FINISHED")
    expect(detail.get_by_test_id("edit-params")).to_have_count(0)  # a finished job's params are kept as they are
    finished = system.job(job)
    assert [s.output for s in finished.steps] == [{"slept": 0.2}, {"slept": 0.3}, {"slept": 0.3}]
    assert [s.attempt for s in finished.steps] == [1, 2, 1]  # the finished step did not run again
    assert tab.not_reloaded()


def test_only_an_operator_of_a_stopped_job_is_offered_the_editor(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    paused = sleep_job(system, project, steps=1, seconds=30)
    system.op(paused, "pause")
    running = sleep_job(system, project, steps=1, seconds=30)
    system.wait_status(running, "RUNNING")
    viewer = open_tab(api_url)
    viewer.sign_in(create_user(admin_api, {project: "viewer"}))
    viewer.row(paused).get_by_test_id("row-open").click()
    detail = viewer.page.get_by_test_id("detail")
    expect(detail.get_by_test_id("detail-params")).to_contain_text('"seconds": 30')
    expect(detail.get_by_test_id("edit-params")).to_have_count(0)

    operator = open_tab(api_url)
    operator.sign_in(create_user(admin_api, {project: "operator"}))
    operator.row(running).get_by_test_id("row-open").click()
    detail = operator.page.get_by_test_id("detail")
    expect(detail.get_by_test_id("detail-status")).to_have_text("RUNNING")
    expect(detail.get_by_test_id("edit-params")).to_have_count(0)

    # the job moves on while it is being edited: the live update closes the editor, and says why
    operator.row(paused).get_by_test_id("row-open").click()
    expect(detail.get_by_test_id("history")).to_contain_text("pause")
    detail.get_by_test_id("edit-params").click()
    expect(detail.get_by_test_id("edit-params-text")).to_be_visible()
    system.op(paused, "resume")
    expect(detail.get_by_test_id("detail-status")).not_to_have_text("PAUSED")
    expect(detail.get_by_test_id("edit-params-form")).to_have_count(0)
    expect(operator.page.get_by_test_id("message").first).to_contain_text("params are edited while PAUSED or ERROR")
    system.op(paused, "pause")


def test_a_stale_editor_shows_the_refusal_and_the_job_as_it_is(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    job = sleep_job(system, project, steps=1, seconds=30)
    system.op(job, "pause")
    tab = open_tab(api_url)
    tab.page.route("**/api/v1/events*", lambda route: route.abort())  # no live updates: the page goes stale
    tab.sign_in(create_user(admin_api, {project: "operator"}))
    tab.row(job).get_by_test_id("row-open").click()
    detail = tab.page.get_by_test_id("detail")
    expect(detail.get_by_test_id("history")).to_contain_text("pause")  # the panel has read the job: it is PAUSED
    detail.get_by_test_id("edit-params").click()
    system.op(job, "resume")
    system.wait_status(job, "RUNNING")

    fill(tab, json.dumps({"steps": 1, "seconds": 1}))
    message = tab.page.get_by_test_id("message").filter(has_text="Could not save the params")
    expect(message).to_contain_text("cannot edit a job that is RUNNING")
    expect(message).to_have_attribute("data-kind", "error")
    expect(detail.get_by_test_id("detail-status")).to_have_text("RUNNING")  # read again
    expect(detail.get_by_test_id("edit-params-form")).to_have_count(0)
    assert system.job(job).params["seconds"] == 30


def test_the_diagnostics_button_downloads_the_bundle_with_the_token_in_the_header_only(
    system: System, project: str, admin_api: httpx.Client, api_url: str, open_tab: OpenTab
) -> None:
    job = sleep_job(system, project, steps=2, seconds=0.1)
    system.wait_status(job, "FINISHED")
    token = create_user(admin_api, {project: "viewer"})
    tab = open_tab(api_url)
    tab.sign_in(token)
    page = tab.page
    tab.row(job).get_by_test_id("row-open").click()
    button = page.get_by_test_id("detail").get_by_test_id("detail-diagnostics")
    expect(button).to_be_visible()  # a viewer may download it

    with page.expect_download() as download:
        button.click()
    saved = download.value
    assert saved.suggested_filename == f"job-{job}-diagnostics.zip"
    with zipfile.ZipFile(io.BytesIO(Path(saved.path()).read_bytes())) as archive:
        files = {name.split("/", 1)[1]: archive.read(name).decode() for name in archive.namelist()}
    assert json.loads(files["job.json"])["id"] == job and "done" in files["logs/0-sleep-1.log"]
    assert json.loads(files["settings.json"])["admin_token"] == "***"
    assert all(token not in text and ADMIN_TOKEN not in text for text in files.values())
    assert any(url.endswith(f"/api/v1/jobs/{job}/diagnostics") for url in tab.requests)
    assert not any(token in url or "Bearer" in url for url in tab.requests)


def test_a_batch_over_every_matching_job_says_what_it_will_do_before_it_does_it(
    system: System, project: str, api_url: str, open_tab: OpenTab
) -> None:
    projects = [project, system.project(), system.project()]
    tag = uuid.uuid4().hex[:8]
    jobs: list[str] = []
    for name in projects:
        for index in range(4):
            target = f"e2e-{tag}-{name}-{index}"
            system.svc.ops.put_target(name, "record", target, {})
            job = system.submit(name, params={"steps": 1, "seconds": 30}, target=("record", target)).id
            system.op(job, "pause")  # stopped: they hold no worker
            jobs.append(job)
    system.svc.ops.put_target(project, "record", f"e2e-{tag}-gone", {})
    gone = system.submit(project, params={"steps": 1, "seconds": 30}, target=("record", f"e2e-{tag}-gone")).id
    system.op(gone, "discard")
    tab = open_tab(api_url)
    tab.sign_in(ADMIN_TOKEN)
    page = tab.page
    page.get_by_test_id("page-size").select_option("10")
    with page.expect_response(lambda answer: f"q={tag}" in answer.url and "page_size=10" in answer.url):
        page.get_by_test_id("filter-q").fill(tag)  # the list is reloaded once the typing pauses
    expect(page.get_by_test_id("pager-info")).to_have_text("1\u201310 of 13 jobs")

    page.get_by_test_id("select-all").check()
    expect(page.get_by_test_id("batch-count")).to_have_text("10 selected")
    page.get_by_test_id("batch-select-matching").click()
    expect(page.get_by_test_id("batch-count")).to_have_text("All 13 jobs matching the filters selected")
    expect(page.get_by_test_id("batch-select-matching")).to_be_hidden()

    dialog = page.get_by_test_id("confirm-dialog")
    history = [system.events(job) for job in jobs]
    page.get_by_test_id("batch-discard").click()
    expect(dialog).to_be_visible()
    text = page.get_by_test_id("confirm-text")
    expect(text).to_contain_text("This will discard 12 jobs in 3 projects.")
    expect(text).to_contain_text("(1 more job matches but does not allow it.)")
    expect(text).to_contain_text("cannot be undone")
    expect(page.get_by_test_id("confirm-ok")).to_have_text("Discard 12 jobs")
    page.get_by_test_id("confirm-cancel").click()
    expect(dialog).to_be_hidden()
    assert {system.job(job).status for job in jobs} == {JobStatus.PAUSED}  # the preview changed nothing
    assert [system.events(job) for job in jobs] == history  # and recorded nothing

    page.get_by_test_id("batch-discard").click()
    try:
        expect(dialog).to_be_visible()
    except AssertionError:  # say why: the page reports a failed preview as a message
        said = page.get_by_test_id("message").all_inner_texts()
        raise AssertionError(f"the second preview opened no dialog; the page says {said}") from None
    expect(text).to_contain_text("This will discard 12 jobs in 3 projects.")
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("message").first).to_contain_text("Discarded 12 jobs")
    assert {system.job(job).status for job in jobs} == {JobStatus.DISCARDED}
    expect(page.get_by_test_id("batch-bar")).to_be_hidden()
    # the discards' live updates land on the page's rows before the next clicks (a row redrawn under a click
    # left the selection as the whole filter's once, in CI)
    expect(page.locator('[data-testid="job-row"][data-status="DISCARDED"]')).to_have_count(10)

    page.get_by_test_id("select-all").check()  # one page's selection only: the batch goes by its ids, as before
    page.get_by_test_id("row-select").first.uncheck()
    expect(page.get_by_test_id("batch-select-matching")).to_be_hidden()
    expect(page.get_by_test_id("batch-count")).to_have_text("9 selected")
