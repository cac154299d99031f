"""Fix and resume, with a real worker behind a real API (docs/contract.md §2.2, "edit"): a job that failed, or was
paused, has its params edited and is resumed; its unfinished steps run with the new params, its finished steps
keep their outputs and do not run again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobctl.client import Client, Conflict, Invalid
from jobctl.states import JobStatus, is_valid_path
from tests.integration.system import System

pytestmark = pytest.mark.integration
TOKEN = "test-admin-token"


@pytest.fixture
def client(api_url: str) -> Iterator[Client]:
    with Client(api_url, token=TOKEN) as c:
        yield c


def test_a_failed_job_is_fixed_and_resumed_with_its_finished_step_kept(
    system: System, project: str, client: Client
) -> None:
    handle = client.submit("sleep", project=project, params={"steps": 3, "seconds": 0.2, "fail_at": 1})
    handle.wait(timeout=30)
    assert handle.status is JobStatus.ERROR, handle.job
    first = handle.steps[0]
    assert first.status is JobStatus.FINISHED and first.output == {"slept": 0.2}
    assert handle.steps[1].status is JobStatus.ERROR and handle.steps[2].status is JobStatus.PENDING
    with pytest.raises(Invalid, match="plan other steps"):
        handle.edit({"steps": 4, "seconds": 0.3})

    handle.edit({"steps": 3, "seconds": 0.3, "fail_at": None})
    assert handle.status is JobStatus.ERROR and handle.params["fail_at"] is None
    assert handle.resume().status is JobStatus.PENDING
    assert handle.result(timeout=30) == {"slept": 0.3}

    steps = handle.steps
    assert steps[0].output == {"slept": 0.2}  # kept: it did not run again
    assert (steps[0].attempt, steps[0].finished_at) == (first.attempt, first.finished_at)
    assert [s.output for s in steps[1:]] == [{"slept": 0.3}, {"slept": 0.3}]  # ran with the new params
    assert steps[1].attempt == 2 and steps[2].attempt == 1
    assert "sleeping 0.30s" in handle.log(2)

    events = handle.events()
    edit = next(e for e in events if e.action == "edit")
    assert (edit.from_status, edit.to_status, edit.actor) == ("ERROR", "ERROR", "admin")
    assert edit.details is not None and edit.details["old"]["fail_at"] == 1 and edit.details["new"]["seconds"] == 0.3
    assert [e.action for e in events][-5:] == ["fail", "edit", "resume", "dispatch", "finish"]
    assert is_valid_path(system.events(handle.id))
    with pytest.raises(Conflict) as refused:
        handle.edit({"steps": 3})
    assert refused.value.status == "FINISHED"


def test_a_paused_job_resumes_its_running_step_with_the_new_params(
    system: System, project: str, client: Client
) -> None:
    handle = client.submit("sleep", project=project, params={"steps": 2, "seconds": 1.0})
    system.wait_step_running(handle.id, 1, min_progress=10)
    handle.pause()
    assert handle.status is JobStatus.PAUSED
    assert handle.steps[0].output == {"slept": 1.0} and handle.steps[1].status is JobStatus.PAUSED

    handle.edit({"steps": 2, "seconds": 0.3})
    assert handle.resume().result(timeout=30) == {"slept": 0.3}
    assert handle.steps[0].output == {"slept": 1.0} and handle.steps[0].attempt == 1
    assert handle.steps[1].attempt == 2  # the paused step ran again, from its checkpoint, with the new params
    assert is_valid_path(system.events(handle.id))
