"""Named tokens (docs/contract.md §9): create with a value shown once, list without values, expire, revoke; for any
user (admins) and under `/me/tokens` for oneself. A revoked or expired token is refused on the next request."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from jobctl.scheduler.store import accounts
from jobctl.workers.services import Services


def _new_user(client: TestClient, unique: Callable[[str], str], roles: dict[str, str] | None = None) -> tuple[str, str]:
    name = unique("t")
    created = client.post("/api/v1/users", json={"name": name, "roles": roles or {}})
    assert created.status_code == 201, created.text
    return name, created.json()["token"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_new_users_token_is_listed_as_default_with_its_prefix(
    client: TestClient, unique: Callable[[str], str]
) -> None:
    name, token = _new_user(client, unique)
    listed = client.get(f"/api/v1/users/{name}/tokens")
    assert listed.status_code == 200, listed.text
    [default] = listed.json()
    assert default["name"] == "default" and default["prefix"] == token[:8]
    assert default["expires_at"] is None and default["expired"] is False
    assert token not in listed.text and hashlib.sha256(token.encode()).hexdigest() not in listed.text


def test_an_admin_gives_a_user_a_named_token_shown_once(
    client: TestClient, services: Services, project: str, unique: Callable[[str], str]
) -> None:
    name, first = _new_user(client, unique, {project: "viewer"})
    expires = datetime.now(UTC) + timedelta(days=30)
    created = client.post(f"/api/v1/users/{name}/tokens", json={"name": "ci", "expires_at": expires.isoformat()})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"name", "token", "prefix", "created_at", "last_used_at", "expires_at", "expired"}
    token = body["token"]
    assert body["name"] == "ci" and body["prefix"] == token[:8] and len(token) >= 43 and token != first
    assert datetime.fromisoformat(body["expires_at"]) == expires.replace(microsecond=expires.microsecond)

    # Both tokens sign in as the same user, with the same roles.
    for held in (first, token):
        me = client.get("/api/v1/me", headers=_auth(held))
        assert me.status_code == 200 and me.json()["name"] == name and me.json()["roles"] == {project: "viewer"}
    with services.db.read() as s:
        assert accounts.user_by_token_hash(s, token) is None  # stored hashed only
    listed = client.get(f"/api/v1/users/{name}/tokens").json()
    assert [t["name"] for t in listed] == ["ci", "default"]
    assert token not in str(listed)
    used = {t["name"]: t["last_used_at"] for t in listed}
    assert used["ci"] is not None and used["default"] is not None  # both were just used


def test_token_names_are_unique_per_user_and_bad_input_changes_nothing(
    client: TestClient, unique: Callable[[str], str]
) -> None:
    name, _ = _new_user(client, unique)
    url = f"/api/v1/users/{name}/tokens"
    assert client.post(url, json={"name": "laptop"}).status_code == 201
    again = client.post(url, json={"name": "laptop"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for bad in ({"name": "old", "expires_at": past}, {"name": ""}, {"name": "a b"}, {"name": "x", "extra": 1}, {}):
        refused = client.post(url, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
    assert [t["name"] for t in client.get(url).json()] == ["default", "laptop"]
    assert client.post("/api/v1/users/nobody-here/tokens", json={"name": "x"}).status_code == 404
    assert client.get("/api/v1/users/nobody-here/tokens").status_code == 404


def test_a_revoked_token_is_refused_on_the_next_request_and_the_others_still_work(
    client: TestClient, unique: Callable[[str], str]
) -> None:
    name, first = _new_user(client, unique)
    second = client.post(f"/api/v1/users/{name}/tokens", json={"name": "second"}).json()["token"]
    assert client.get("/api/v1/me", headers=_auth(second)).status_code == 200
    gone = client.delete(f"/api/v1/users/{name}/tokens/second")
    assert gone.status_code == 204 and gone.content == b""
    refused = client.get("/api/v1/me", headers=_auth(second))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert client.get("/api/v1/me", headers=_auth(first)).status_code == 200
    assert client.delete(f"/api/v1/users/{name}/tokens/second").status_code == 404
    assert client.delete("/api/v1/users/nobody-here/tokens/default").status_code == 404


def test_an_expired_token_is_refused(client: TestClient, services: Services, unique: Callable[[str], str]) -> None:
    name, _ = _new_user(client, unique)
    soon = datetime.now(UTC) + timedelta(seconds=1)
    token = client.post(f"/api/v1/users/{name}/tokens", json={"name": "brief", "expires_at": soon.isoformat()}).json()
    token_hash = hashlib.sha256(token["token"].encode()).hexdigest()
    with services.db.read() as s:
        assert accounts.sign_in(s, token_hash, now=soon - timedelta(seconds=0.5)) is not None
        assert accounts.sign_in(s, token_hash, now=soon) is None  # expired at the stroke of its time
    # and over HTTP, once the time has passed: the store's clock is the server's
    with services.db.write() as s:
        user = accounts.get_user(s, name)
        accounts.revoke_token(s, user.id, "brief")
        accounts.create_token(s, user.id, "brief", token_hash, "", datetime.now(UTC) - timedelta(seconds=1))
    refused = client.get("/api/v1/me", headers=_auth(token["token"]))
    assert refused.status_code == 401
    listed = {t["name"]: t for t in client.get(f"/api/v1/users/{name}/tokens").json()}
    assert listed["brief"]["expired"] is True


def test_only_admins_manage_other_users_tokens(
    client: TestClient, user: Callable[..., dict[str, str]], project: str, unique: Callable[[str], str]
) -> None:
    name, _ = _new_user(client, unique)
    operator = user({project: "operator"})
    for method, url, body in (
        ("POST", f"/api/v1/users/{name}/tokens", {"name": "x"}),
        ("GET", f"/api/v1/users/{name}/tokens", None),
        ("DELETE", f"/api/v1/users/{name}/tokens/default", None),
    ):
        refused = client.request(method, url, json=body, headers=operator)
        assert refused.status_code == 403, (method, url, refused.text)
    assert [t["name"] for t in client.get(f"/api/v1/users/{name}/tokens").json()] == ["default"]


def test_anyone_manages_their_own_tokens_under_me(
    client: TestClient, project: str, unique: Callable[[str], str]
) -> None:
    name, first = _new_user(client, unique, {project: "viewer"})
    mine = _auth(first)
    created = client.post("/api/v1/me/tokens", json={"name": "script"}, headers=mine)
    assert created.status_code == 201, created.text
    script = created.json()["token"]
    me = client.get("/api/v1/me", headers=_auth(script)).json()
    assert me["name"] == name and me["roles"] == {project: "viewer"}  # the same access, never more
    assert [t["name"] for t in client.get("/api/v1/me/tokens", headers=mine).json()] == ["default", "script"]
    assert client.post("/api/v1/me/tokens", json={"name": "script"}, headers=mine).status_code == 409
    # revoking the token the request came with works, and it is refused from the next request on
    assert client.delete("/api/v1/me/tokens/default", headers=mine).status_code == 204
    assert client.get("/api/v1/me", headers=mine).status_code == 401
    assert [t["name"] for t in client.get("/api/v1/me/tokens", headers=_auth(script)).json()] == ["script"]
    assert client.delete("/api/v1/me/tokens/default", headers=_auth(script)).status_code == 404


def test_last_used_is_written_at_most_once_a_minute(
    client: TestClient, services: Services, unique: Callable[[str], str]
) -> None:
    _, token = _new_user(client, unique)
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    assert client.get("/api/v1/me", headers=_auth(token)).status_code == 200
    with services.db.read() as s:
        first = accounts.sign_in(s, token_hash)
    assert first is not None and first.last_used_at is not None
    assert client.get("/api/v1/me", headers=_auth(token)).status_code == 200
    with services.db.read() as s:
        again = accounts.sign_in(s, token_hash)
    assert again is not None and again.last_used_at == first.last_used_at  # not written again within the minute
    later = first.last_used_at + timedelta(seconds=accounts.USE_RECORDED_EVERY_S)
    assert accounts.needs_use(again, later) and not accounts.needs_use(again, later - timedelta(seconds=1))
