"""Built-in job types: their parameters are validated and they declare their steps up front."""

from __future__ import annotations

import pytest

from jobctl.scheduler.errors import Invalid
from jobctl.workers import jobtypes  # noqa: F401  (registers the built-in types)
from jobctl.workers.registry import Retry, registry


def test_sleep_plans_its_steps_with_defaults() -> None:
    params, steps = registry.get("sleep").prepare({})
    assert params["steps"] == 3 and params["seconds"] == 1.0 and params["subprocess"] is False
    assert [s.name for s in steps] == ["sleep-1", "sleep-2", "sleep-3"]


@pytest.mark.parametrize(
    "params",
    [{"steps": 0}, {"steps": 51}, {"seconds": -1}, {"seconds": 3601}, {"fail_at": 3}, {"bogus": 1}, {"steps": "many"}],
)
def test_sleep_refuses_bad_params(params: dict[str, object]) -> None:
    with pytest.raises(Invalid, match="invalid params for job type 'sleep'"):
        registry.get("sleep").prepare(params)


def test_file_digest_needs_a_file_target() -> None:
    digest = registry.get("file_digest")
    assert [s.name for s in digest.prepare({})[1]] == ["stat", "digest", "record"]
    with pytest.raises(Invalid):
        registry.check_target(digest, None)
    with pytest.raises(Invalid):
        registry.check_target(digest, ("record", "x"))
    registry.check_target(digest, ("file", "x"))


def test_unknown_job_type_is_invalid() -> None:
    with pytest.raises(Invalid, match="unknown job type"):
        registry.get("nope")


def test_retry_policy_is_a_decision() -> None:
    policy = Retry(attempts=2, lost_attempts=1)
    assert policy.delay(1) == 0.0 and policy.delay(2) is None
    assert not policy.retry_lost(1)


def test_file_digest_declares_its_steps_and_sleep_plans_them() -> None:
    assert [(s.name, s.weight) for s in registry.get("file_digest").step_list() or []] == [
        ("stat", 1.0),
        ("digest", 8.0),
        ("record", 1.0),
    ]
    assert registry.get("sleep").step_list() is None
