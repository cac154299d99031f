"""Every request the client makes, as a value: method, path, query, body and how to read the answer. The
sync and async clients send the same `Call`s (`_http`), so each rule is written once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from jobctl import states
from jobctl.client._errors import BadAnswer
from jobctl.client._models import (
    AuditPage,
    BatchResult,
    DeliveryPage,
    Event,
    Job,
    JobPage,
    JobQuery,
    JobType,
    Me,
    NewToken,
    NewUser,
    NewWebhook,
    Project,
    Stats,
    Target,
    TargetDeleted,
    Token,
    User,
    Webhook,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: The user operations' names, in the order the API documents them (from `jobctl.states.OPERATIONS`).
OPERATIONS: tuple[str, ...] = tuple(op.value for op in states.OPERATIONS)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reading of its answer (`parse` gets the decoded JSON, the text if `text`, the bytes if
    `raw`)."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Any = None
    json: Any = None
    text: bool = False
    raw: bool = False  # `parse` gets the answer's bytes (a file to save, such as a diagnostic bundle)


def one(model: type[M]) -> Callable[[Any], M]:
    def parse(value: Any) -> M:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise BadAnswer(f"the server's answer is not a {model.__name__}: {exc.errors()[0]['msg']}") from exc

    return parse


def many(model: type[M], key: str | None = None) -> Callable[[Any], list[M]]:
    item = one(model)

    def parse(value: Any) -> list[M]:
        if key is not None:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, list):
            raise BadAnswer(f"the server answered with something that is not a list of {model.__name__}")
        return [item(v) for v in value]

    return parse


def nothing(_value: Any) -> None:
    """The reading of an answer that holds nothing (204)."""
    return None


def segment(value: str) -> str:
    """`value` as one path segment (a `/` or `?` in it cannot reach another route)."""
    return quote(value, safe="")


def submission(
    job_type: str,
    project: str,
    params: Mapping[str, Any] | None = None,
    target: tuple[str, str] | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """The JSON of one job to submit."""
    body: dict[str, Any] = {"project": project, "type": job_type}
    if params is not None:
        body["params"] = dict(params)
    if target is not None:
        kind, name = target
        body["target"] = {"kind": kind, "name": name}
    if priority is not None:
        body["priority"] = priority
    return body


def as_submission(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item of `submit_many` as the API wants it: `target` may be a (kind, name) pair."""
    body = dict(item)
    target = body.get("target")
    if isinstance(target, tuple | list):
        body["target"] = {"kind": target[0], "name": target[1]}
    return body


# -- jobs ----------------------------------------------------------------------------------------------------


def submit(body: dict[str, Any]) -> Call[Job]:
    return Call("POST", "/jobs", one(Job), json=body)


def submit_many(bodies: Sequence[Mapping[str, Any]]) -> Call[list[Job]]:
    return Call("POST", "/jobs/bulk", many(Job, "items"), json={"jobs": [as_submission(b) for b in bodies]})


def get_job(job_id: str) -> Call[Job]:
    return Call("GET", f"/jobs/{segment(job_id)}", one(Job))


def job_query(
    project: str | Sequence[str],
    status: str | Sequence[str],
    type: str | None,
    q: str | None,
    period: str | None,
    since: str | None,
    until: str | None,
    sort: str | None,
    page_size: int,
    error_code: str | Sequence[str] = (),
) -> JobQuery:
    """The first page's query of `jobs()` (`project`, `status` and `error_code`: one value or several)."""
    codes = _names(error_code)
    return JobQuery(_names(project), _names(status), type, q, period, since, until, sort, 1, page_size, codes)


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def ended_among(ids: Sequence[str]) -> Call[JobPage]:
    """Those of the jobs `ids` (at most 200) that ended - FINISHED, DISCARDED or ERROR - in one list request."""
    ended = tuple(status.value for status in states.JobStatus if status.ended)
    return list_jobs(JobQuery(statuses=ended, ids=tuple(ids), page_size=max(1, len(ids))))


def list_jobs(query: JobQuery) -> Call[JobPage]:
    return Call("GET", "/jobs", one(JobPage), params=query.params())


def operate(job_id: str, operation: str) -> Call[Job | None]:
    """A user operation; a delete answers nothing (the job is gone)."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
    if operation == "delete":
        return Call("DELETE", f"/jobs/{segment(job_id)}", lambda _: None)
    return Call("POST", f"/jobs/{segment(job_id)}/{operation}", one(Job))


def edit_params(job_id: str, params: Mapping[str, Any]) -> Call[Job]:
    """`PATCH /jobs/{id}`: the PAUSED or ERROR job's new params, whole."""
    return Call("PATCH", f"/jobs/{segment(job_id)}", one(Job), json={"params": dict(params)})


def diagnostics(job_id: str) -> Call[bytes]:
    """`GET /jobs/{id}/diagnostics`: the job's diagnostic bundle, a zip, as bytes."""
    return Call("GET", f"/jobs/{segment(job_id)}/diagnostics", bytes, raw=True)


def events(job_id: str) -> Call[list[Event]]:
    return Call("GET", f"/jobs/{segment(job_id)}/events", many(Event))


def log(job_id: str, step: int, tail: int | None) -> Call[str]:
    params = {"tail": tail} if tail is not None else None
    return Call("GET", f"/jobs/{segment(job_id)}/steps/{int(step)}/log", str, params=params, text=True)


def batch(
    action: str, ids: Sequence[str] | None, filter: Mapping[str, Any] | None, atomic: bool, dry_run: bool = False
) -> Call[list[BatchResult]]:
    if action not in OPERATIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(OPERATIONS)}")
    if (ids is None) == (filter is None):
        raise ValueError("give the jobs either as ids or as a filter")
    body: dict[str, Any] = {"action": action, "atomic": atomic}
    if dry_run:
        body["dry_run"] = True
    if ids is not None:
        body["ids"] = list(ids)
    else:
        body["filter"] = dict(filter or {})
    return Call("POST", "/jobs/batch", many(BatchResult, "results"), json=body)


def stats(
    project: str | Sequence[str],
    period: str | None,
    since: datetime | timedelta | str | None,
    until: datetime | timedelta | str | None,
) -> Call[Stats]:
    """`GET /stats`: the statistics of the jobs created in the window, in these projects (one or several; none:
    every one the caller sees). `since` and `until` as `moment` (a timedelta: back from now), or ISO-8601 text."""
    params: list[tuple[str, str]] = [("project", p) for p in _names(project)]
    if period:
        params.append(("period", period))
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            params.append((name, value if isinstance(value, str) else moment(value, ago=True)))
    return Call("GET", "/stats", one(Stats), params=params)


def live_events(project: str) -> Call[None]:
    """The project's event stream (`text/event-stream`, read line by line rather than parsed whole)."""
    return Call("GET", "/events", lambda _: None, params={"project": project}, text=True)


def types() -> Call[list[JobType]]:
    return Call("GET", "/types", many(JobType))


# -- targets -------------------------------------------------------------------------------------------------


def list_targets(project: str) -> Call[list[Target]]:
    return Call("GET", f"/projects/{segment(project)}/targets", many(Target))


def put_target(project: str, name: str, attributes: Mapping[str, Any] | None, kind: str) -> Call[Target]:
    path = f"/projects/{segment(project)}/targets/{segment(kind)}/{segment(name)}"
    return Call("PUT", path, one(Target), json={"attributes": dict(attributes or {})})


def delete_target(project: str, name: str, kind: str) -> Call[TargetDeleted | None]:
    path = f"/projects/{segment(project)}/targets/{segment(kind)}/{segment(name)}"
    return Call("DELETE", path, lambda v: one(TargetDeleted)(v) if isinstance(v, dict) else None)


# -- projects and users --------------------------------------------------------------------------------------


def me() -> Call[Me]:
    return Call("GET", "/me", one(Me))


def list_projects() -> Call[list[Project]]:
    return Call("GET", "/projects", many(Project))


def create_project(name: str, max_running: int | None) -> Call[Project]:
    body: dict[str, Any] = {"name": name}
    if max_running is not None:
        body["max_running"] = max_running
    return Call("POST", "/projects", one(Project), json=body)


def list_users() -> Call[list[User]]:
    return Call("GET", "/users", many(User))


def create_user(name: str, admin: bool, roles: Mapping[str, str] | None) -> Call[NewUser]:
    return Call("POST", "/users", one(NewUser), json={"name": name, "admin": admin, "roles": dict(roles or {})})


def set_roles(name: str, roles: Mapping[str, str | None]) -> Call[User | None]:
    def parse(value: Any) -> User | None:
        return one(User)(value) if isinstance(value, dict) and "name" in value else None

    return Call("PUT", f"/users/{segment(name)}/roles", parse, json=dict(roles))


def update_user(name: str, disabled: bool | None, admin: bool | None) -> Call[User]:
    """Change what is given (not None) of the user's `disabled` and `admin` flags."""
    body = {key: value for key, value in (("disabled", disabled), ("admin", admin)) if value is not None}
    if not body:
        raise ValueError("nothing to change: give disabled or admin")
    return Call("PATCH", f"/users/{segment(name)}", one(User), json=body)


def delete_user(name: str) -> Call[None]:
    return Call("DELETE", f"/users/{segment(name)}", nothing)


def update_project(name: str, max_running: int | None) -> Call[Project]:
    """Set the project's limit of RUNNING jobs; None (sent as null) is the server's default."""
    return Call("PATCH", f"/projects/{segment(name)}", one(Project), json={"max_running": max_running})


def delete_project(name: str) -> Call[None]:
    return Call("DELETE", f"/projects/{segment(name)}", nothing)


# -- tokens and the audit log --------------------------------------------------------------------------------


def moment(value: datetime | timedelta, *, ago: bool) -> str:
    """A time as the API takes it (ISO-8601 in UTC): a datetime (a naive one is local time), or a timedelta
    from now - forward, or back when `ago`."""
    if isinstance(value, timedelta):
        now = datetime.now(UTC)
        value = now - value if ago else now + value
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tokens(user: str | None) -> str:
    """The path of `user`'s tokens; None: the caller's own."""
    return "/me/tokens" if user is None else f"/users/{segment(user)}/tokens"


def create_token(user: str | None, name: str, expires_at: datetime | timedelta | None) -> Call[NewToken]:
    body: dict[str, Any] = {"name": name}
    if expires_at is not None:
        body["expires_at"] = moment(expires_at, ago=False)
    return Call("POST", tokens(user), one(NewToken), json=body)


def list_tokens(user: str | None) -> Call[list[Token]]:
    return Call("GET", tokens(user), many(Token))


def revoke_token(user: str | None, name: str) -> Call[None]:
    return Call("DELETE", f"{tokens(user)}/{segment(name)}", nothing)


def audit(
    actor: str | None,
    action: str | None,
    since: datetime | timedelta | str | None,
    page: int,
    page_size: int,
) -> Call[AuditPage]:
    """One page of the audit log; `since` as `moment` (back from now), or a time already as the API takes it."""
    params: dict[str, str | int] = {"page": page, "page_size": page_size}
    if actor:
        params["actor"] = actor
    if action:
        params["action"] = action
    if since is not None:
        params["since"] = since if isinstance(since, str) else moment(since, ago=True)
    return Call("GET", "/audit", one(AuditPage), params=params)


# -- webhooks ------------------------------------------------------------------------------------------------


def webhooks(project: str) -> str:
    """The path of `project`'s webhooks."""
    return f"/projects/{segment(project)}/webhooks"


def create_webhook(project: str, url: str, statuses: Sequence[str], secret: str | None) -> Call[NewWebhook]:
    if isinstance(statuses, str):
        raise ValueError("statuses is a list of states, e.g. ['FINISHED', 'ERROR']")
    body: dict[str, Any] = {"url": url, "statuses": [str(s) for s in statuses]}
    if secret is not None:
        body["secret"] = secret
    return Call("POST", webhooks(project), one(NewWebhook), json=body)


def list_webhooks(project: str) -> Call[list[Webhook]]:
    return Call("GET", webhooks(project), many(Webhook))


def delete_webhook(project: str, webhook_id: str) -> Call[None]:
    return Call("DELETE", f"{webhooks(project)}/{segment(webhook_id)}", nothing)


def webhook_deliveries(
    project: str, webhook_id: str, status: str | None, page: int, page_size: int
) -> Call[DeliveryPage]:
    params: dict[str, str | int] = {"page": page, "page_size": page_size}
    if status is not None:
        params["status"] = status
    return Call("GET", f"{webhooks(project)}/{segment(webhook_id)}/deliveries", one(DeliveryPage), params=params)
