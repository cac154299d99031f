"""A small typed client of the jobctl HTTP API (SPEC §4), over httpx.

Answers are parsed into the API's own response models (`api.schemas`), so the client and the server share one
contract. Every failure is a `ClientError`: `ApiError` for an error answer (its status, code and message, and
for a refused operation the job's `status` and the operations `allowed`), `Unreachable` when no answer came.
The token is sent in the `Authorization` header of each request and never appears in an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobctl.api.schemas import Job, JobPage, Me, Project

API = "/api/v1"
DEFAULT_URL = "http://127.0.0.1:8000"
OPERATIONS = ("pause", "resume", "restart", "discard", "delete")

M = TypeVar("M", bound=BaseModel)


# ------------------------------------------------------------------------------------------------ errors


class ClientError(Exception):
    """Base of every failure of a call to the API; `str()` is a one-line message for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(ClientError):
    """The API answered with an error: `{"error": {"code", "message", "status"?, "allowed"?}}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        job_status: str | None = None,
        allowed: Sequence[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.job_status = job_status
        self.allowed = list(allowed) if allowed is not None else None

    @property
    def missing_route(self) -> bool:
        """True when the server has no such route at all (an older server), not merely no such object."""
        return self.status == 405 or (self.status == 404 and self.message == "no such route")


class Unreachable(ClientError):
    """No answer: the server is down, the address is wrong, or the connection broke."""


class BadAnswer(ClientError):
    """The server answered 2xx with something that is not what the API promises (wrong server?)."""


# ------------------------------------------------------------------------------------------------ models


class User(BaseModel):
    """A user as `GET /api/v1/users` lists it. Unknown fields are kept (the users API is young)."""

    model_config = ConfigDict(extra="allow")

    name: str
    admin: bool = False
    roles: dict[str, str] = Field(default_factory=dict)


class NewUser(User):
    """The answer to `POST /api/v1/users`: the user and its token, which the server shows only this once."""

    token: str


@dataclass(frozen=True)
class JobFilter:
    """The query of `GET /api/v1/jobs` (SPEC §4); None and empty fields are left out."""

    projects: Sequence[str] = ()
    statuses: Sequence[str] = ()
    type: str | None = None
    q: str | None = None
    period: str | None = None
    sort: str | None = None
    page: int = 1
    page_size: int = 50

    def params(self) -> list[tuple[str, str | int]]:
        """The query string as (name, value) pairs, repeating `project` and `status`."""
        pairs: list[tuple[str, str | int]] = [("project", p) for p in self.projects]
        pairs += [("status", s) for s in self.statuses]
        for name in ("type", "q", "period", "sort"):
            value = getattr(self, name)
            if value:
                pairs.append((name, value))
        pairs += [("page", self.page), ("page_size", self.page_size)]
        return pairs


# ------------------------------------------------------------------------------------------------ client


class JobctlClient:
    """Calls the API at `url` as the holder of `token`.

    `http` is an existing `httpx.Client` to send the requests with (e.g. FastAPI's `TestClient`); its base URL
    is used and it is not closed by `close()`. Without it, the client opens its own connection pool to `url`.
    """

    def __init__(
        self, url: str = DEFAULT_URL, token: str | None = None, *, http: httpx.Client | None = None, timeout: float = 10
    ) -> None:
        self.url = url.rstrip("/")
        self._owned = http is None
        self.http = http if http is not None else httpx.Client(base_url=self.url, timeout=timeout)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def close(self) -> None:
        """Close the connection pool, if this client opened it."""
        if self._owned:
            self.http.close()

    def __enter__(self) -> JobctlClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- jobs ----------------------------------------------------------------------------------------------------

    def list_jobs(self, query: JobFilter | None = None) -> JobPage:
        """One page of the jobs the caller sees that match `query`, with the total count."""
        return _parse(JobPage, self._call("GET", "/jobs", params=(query or JobFilter()).params()))

    def get_job(self, job_id: str) -> Job:
        """The job with its steps; `ApiError` 404 if it does not exist for the caller."""
        return _parse(Job, self._call("GET", f"/jobs/{_segment(job_id)}"))

    def submit_job(
        self,
        project: str,
        job_type: str,
        *,
        params: Mapping[str, Any] | None = None,
        target: tuple[str, str] | None = None,
        priority: int | None = None,
    ) -> Job:
        """Submit a job and return it as created (PENDING, all its steps PENDING)."""
        body: dict[str, Any] = {"project": project, "type": job_type}
        if params is not None:
            body["params"] = dict(params)
        if target is not None:
            body["target"] = {"kind": target[0], "name": target[1]}
        if priority is not None:
            body["priority"] = priority
        return _parse(Job, self._call("POST", "/jobs", json=body))

    def operate(self, job_id: str, operation: str) -> Job | None:
        """Apply `operation` (pause, resume, restart, discard, delete) to the job.

        Returns the job as it is now, or None for a delete (the job is gone). A refused operation raises
        `ApiError` 409 with the job's `job_status` and the operations `allowed`.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}")
        if operation == "delete":
            self._call("DELETE", f"/jobs/{_segment(job_id)}")
            return None
        return _parse(Job, self._call("POST", f"/jobs/{_segment(job_id)}/{operation}"))

    def job_events(self, project: str, read_timeout: float | None = 60) -> Iterator[dict[str, Any]]:
        """The data of each `job` event of `GET /api/v1/events?project=`, as they arrive, for as long as the
        stream lasts. Raises `ApiError` if the stream is refused (404 from a server without it), `Unreachable`
        if it breaks or stays silent for `read_timeout` seconds (the server sends keepalives more often)."""
        timeout = httpx.Timeout(10, read=read_timeout)
        try:
            with self.http.stream(
                "GET", f"{API}/events", params={"project": project}, headers=self._headers, timeout=timeout
            ) as answer:
                if answer.is_error:
                    answer.read()
                    raise _api_error(answer)
                for event in parse_sse(answer.iter_lines()):
                    if event.name == "job":
                        data = json.loads(event.data)
                        if isinstance(data, dict):
                            yield data
        except httpx.HTTPError as exc:
            raise Unreachable(f"the event stream of {self.url} broke: {_reason(exc)}") from exc

    # -- projects ------------------------------------------------------------------------------------------------

    def list_projects(self) -> list[Project]:
        """The projects visible to the caller, by name."""
        return [_parse(Project, item) for item in _as_list(self._call("GET", "/projects"))]

    def create_project(self, name: str, max_running: int | None = None) -> Project:
        """Create a project (admins only)."""
        body: dict[str, Any] = {"name": name}
        if max_running is not None:
            body["max_running"] = max_running
        return _parse(Project, self._call("POST", "/projects", json=body))

    # -- users ---------------------------------------------------------------------------------------------------

    def me(self) -> Me:
        """The caller: name, admin flag and roles."""
        return _parse(Me, self._call("GET", "/me"))

    def list_users(self) -> list[User]:
        """Every user (admins only)."""
        return [_parse(User, item) for item in _as_list(self._call("GET", "/users"))]

    def create_user(self, name: str, *, admin: bool = False, roles: Mapping[str, str] | None = None) -> NewUser:
        """Create a user (admins only); the answer holds its token, which is never shown again."""
        body = {"name": name, "admin": admin, "roles": dict(roles or {})}
        return _parse(NewUser, self._call("POST", "/users", json=body))

    def set_roles(self, name: str, roles: Mapping[str, str | None]) -> User | None:
        """Give the user these roles per project (None removes the role); the user as it is now, if answered."""
        answer = self._call("PUT", f"/users/{_segment(name)}/roles", json=dict(roles))
        return _parse(User, answer) if isinstance(answer, dict) and "name" in answer else None

    # -- transport -----------------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send the request; the decoded JSON answer (None when empty), or raise a `ClientError`."""
        try:
            answer = self.http.request(method, f"{API}{path}", headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach the jobctl API at {self.url}: {_reason(exc)}") from exc
        if answer.is_error:
            raise _api_error(answer)
        if not answer.content:
            return None
        try:
            return answer.json()
        except ValueError as exc:
            raise BadAnswer(f"{method} {path} answered {answer.status_code} with something that is not JSON") from exc


@dataclass(frozen=True)
class ServerEvent:
    """One Server-Sent Event: its name (`message` if unnamed) and its data lines joined by newlines."""

    name: str
    data: str


def parse_sse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events in a `text/event-stream`, given line by line (comments and `id:`/`retry:` are skipped)."""
    name = "message"
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield ServerEvent(name, "\n".join(data))
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


def _segment(value: str) -> str:
    """`value` as one path segment (a `/` or `?` in it cannot reach another route)."""
    return quote(value, safe="")


def _api_error(answer: httpx.Response) -> ApiError:
    """The `ApiError` for an error answer, readable even when the body is not the API's error shape."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return ApiError(
            answer.status_code,
            str(error.get("code") or "error"),
            error["message"],
            job_status=error.get("status"),
            allowed=error.get("allowed"),
        )
    reason = answer.reason_phrase or "error"
    return ApiError(answer.status_code, "http", f"{answer.request.url.path} answered {answer.status_code} {reason}")


def _parse(model: type[M], value: Any) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise BadAnswer(f"the server's answer is not a {model.__name__}: {exc.errors()[0]['msg']}") from exc


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise BadAnswer("the server answered with something that is not a list")
    return value


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
