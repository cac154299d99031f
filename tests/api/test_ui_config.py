"""`/ui/config.json`: what the web monitor needs before it signs in. Its lists are the one definition of each
(`jobctl.states`, the store's `SORTS`), so the page holds none of its own (tests/repo/test_one_definition.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from jobctl.scheduler.store.jobs import SORTS
from jobctl.states import OPERATIONS, Action, JobStatus
from jobctl.workers.services import Services


def test_the_config_lists_the_states_operations_and_sort_keys_from_their_one_definition(
    anonymous: TestClient,
) -> None:
    answer = anonymous.get("/ui/config.json")  # no token: the page reads it before signing in
    assert answer.status_code == 200
    config = answer.json()
    assert set(config) == {"flower_url", "statuses", "operations", "irreversible", "sorts", "editable"}
    assert config["statuses"] == [s.value for s in JobStatus]  # in order: the page shows them so
    assert config["operations"] == [op.value for op in OPERATIONS]
    assert config["irreversible"] == [Action.DISCARD.value, Action.DELETE.value]  # end or remove the job
    assert config["sorts"] == list(SORTS)
    assert config["editable"] == [JobStatus.PAUSED.value, JobStatus.ERROR.value]  # a stopped job's params


def test_the_openapi_document_describes_the_config(anonymous: TestClient) -> None:
    schema = anonymous.get("/openapi.json").json()["components"]["schemas"]["UIConfig"]
    assert set(schema["required"]) == {"flower_url", "statuses", "operations", "irreversible", "sorts", "editable"}


def test_flowers_address_is_the_configured_one_whatever_host_the_request_names(
    anonymous: TestClient, services: Services
) -> None:
    for host in ("evil.example", "127.0.0.1:1", "[::1]:8000"):
        config = anonymous.get("/ui/config.json", headers={"Host": host}).json()
        assert config["flower_url"] == services.settings.flower_base_url, host
        assert "evil" not in config["flower_url"]
