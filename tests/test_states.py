"""The transition table: exactly docs/contract.md §2, and the path checker built on it."""

from __future__ import annotations

import pytest

from jobctl.states import (
    FINAL,
    IN_PLACE,
    OPERATIONS,
    Action,
    JobStatus,
    allowed_from,
    allowed_operations,
    is_valid_path,
    target_of,
)

P, R, PA, E, D, F = (
    JobStatus.PENDING,
    JobStatus.RUNNING,
    JobStatus.PAUSED,
    JobStatus.ERROR,
    JobStatus.DISCARDED,
    JobStatus.FINISHED,
)

CONTRACT = {
    "pause": ({P, R}, PA),
    "resume": ({PA, E}, P),
    "restart": ({R, PA, E}, P),
    "discard": ({P, R, PA, E}, D),
    "delete": ({F, D}, None),
}


@pytest.mark.parametrize("op", list(CONTRACT))
def test_user_operations_match_the_spec(op: str) -> None:
    sources, target = CONTRACT[op]
    assert allowed_from(Action(op)) == sources
    assert target_of(Action(op)) == target


def test_there_are_thirty_operation_state_pairs() -> None:
    assert len(OPERATIONS) * len(JobStatus) == 30


def test_a_final_state_is_never_left_except_by_delete() -> None:
    for action in Action:
        if action is Action.DELETE:
            continue
        assert not (allowed_from(action) & FINAL), action


def test_allowed_operations_per_state() -> None:
    assert allowed_operations(R) == ["pause", "restart", "discard"]
    assert allowed_operations(F) == ["delete"]
    assert allowed_operations(E) == ["resume", "restart", "discard"]


def test_valid_and_invalid_paths() -> None:
    good = [
        (None, "PENDING", "submit"),
        ("PENDING", "RUNNING", "dispatch"),
        ("RUNNING", "PAUSED", "pause"),
        ("PAUSED", "PENDING", "resume"),
        ("PENDING", "RUNNING", "dispatch"),
        ("RUNNING", "RUNNING", "retry"),
        ("RUNNING", "FINISHED", "finish"),
    ]
    assert is_valid_path(good)
    assert not is_valid_path(good[1:])  # must start with submit
    assert not is_valid_path([*good, ("FINISHED", "PENDING", "resume")])  # a final state left
    assert not is_valid_path([good[0], ("RUNNING", "PAUSED", "pause")])  # from != previous to
    assert not is_valid_path([good[0], ("PENDING", "FINISHED", "pause")])  # wrong target


def test_an_edit_keeps_a_stopped_jobs_state() -> None:
    assert allowed_from(Action.EDIT) == IN_PLACE[Action.EDIT] == {PA, E}
    assert Action.EDIT not in OPERATIONS and "edit" not in allowed_operations(PA)  # not an operation's button
    failed = [(None, "PENDING", "submit"), ("PENDING", "RUNNING", "dispatch"), ("RUNNING", "ERROR", "fail")]
    assert is_valid_path(
        [*failed, ("ERROR", "ERROR", "edit"), ("ERROR", "ERROR", "edit"), ("ERROR", "PENDING", "resume")]
    )
    assert not is_valid_path([*failed, ("ERROR", "PENDING", "edit")])  # an edit never moves the job
    assert not is_valid_path([*failed[:2], ("RUNNING", "RUNNING", "edit")])  # nor edits a running one
