"""The client's errors: one base, `Error`, and one class per way a call fails. `str()` of any of them is one
line for a person, and never holds the caller's token."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobctl.client._models import BatchResult

if TYPE_CHECKING:
    from jobctl.client._models import Job


#: the shortest token `redact` takes out of a message
MIN_REDACTED = 8


def one_line(message: str) -> str:
    """`message` with its line breaks turned into spaces."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip()) or message.strip()


def error_text(error: Any) -> str | None:
    """A job's or a step's `error` as text: the message itself, or the `message` of an `{code, message, ...}`
    object; None when there is none."""
    if error is None or error == "":
        return None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return str(error)


class Error(Exception):
    """Base of every failure of a call to a jobctl server. `message` (also `str()`) is one line."""

    def __init__(self, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message

    def redact(self, secret: str | None) -> None:
        """Take `secret` (the token) out of the message, should a server ever have echoed it (a secret of a few
        characters is left: it would blot out ordinary words)."""
        if secret and len(secret) >= MIN_REDACTED and secret in self.message:
            self.message = self.message.replace(secret, "***")
            self.args = (self.message,)


class ApiError(Error):
    """The server answered with an error (`{"error": {"code", "message", ...}}`): its HTTP status in
    `http_status`, the API's `code`, and the error's other fields in `details`. Raised as one of the subclasses
    below when the status has one; as `ApiError` itself for any other (500, 503, ...)."""

    def __init__(self, http_status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.details = details or {}

    @property
    def missing_route(self) -> bool:
        """True when the server has no such route at all (an older server), not merely no such object."""
        return self.http_status == 405 or (self.http_status == 404 and self.message == "no such route")


class Unauthorized(ApiError):
    """401: no token, or one the server does not know."""


class Forbidden(ApiError):
    """403: the caller's role does not allow it."""


class NotFound(ApiError):
    """404: no such job, project, target or user - or one the caller may not see."""


class Conflict(ApiError):
    """409: the job's state refuses the operation. `status`: the job's state; `allowed`: the operations it
    allows now. For an atomic batch that was refused, `refused` lists the jobs that refused it."""

    def __init__(
        self,
        http_status: int,
        code: str,
        message: str,
        status: str | None,
        allowed: Sequence[str] | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(http_status, code, message, details)
        self.status = status
        self.allowed = list(allowed or [])

    @property
    def refused(self) -> list[BatchResult]:
        """The jobs of an atomic batch that refused the action (nothing was changed)."""
        items = self.details.get("refused")
        return [BatchResult.model_validate(item) for item in items] if isinstance(items, list) else []


class Invalid(ApiError):
    """400, 413 or 422: the request was refused before anything changed. `items`: for a bulk submission, the
    refused jobs as `{index, message}`."""

    @property
    def items(self) -> list[dict[str, Any]]:
        """The refused jobs of a bulk submission, `{index, message}` each (empty for any other request)."""
        return list(self.details.get("items") or [])


class Unreachable(Error):
    """No answer: the server is down, the address is wrong, or the connection (or the event stream) broke."""


class BadAnswer(Error):
    """The server answered 2xx with something that is not what the API promises (not a jobctl server?)."""


class JobFailed(Error):
    """`result()` of a job that ended in ERROR: `job` is the job as it ended, `error` its error."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} failed: {error_text(job.error) or 'no error recorded'}")
        self.job = job
        self.error = job.error


class JobDiscarded(Error):
    """`result()` of a job that was DISCARDED: `job` is the job as it ended, `reason` says by whom or why."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} was discarded: {job.discard_reason or 'no reason recorded'}")
        self.job = job
        self.reason = job.discard_reason


_BY_STATUS: dict[int, type[ApiError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: Invalid,
    422: Invalid,
}


def api_error(http_status: int, body: Any, fallback: str) -> ApiError:
    """The error for an error answer with this status and decoded body (`fallback`: the message when the body
    is not the API's error shape)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("message"), str)):
        if http_status == 409:
            return Conflict(http_status, "http", fallback, None, None)
        return _BY_STATUS.get(http_status, ApiError)(http_status, "http", fallback)
    code, message = str(error.get("code") or "error"), error["message"]
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    if http_status == 409:
        return Conflict(http_status, code, message, error.get("status"), error.get("allowed"), details)
    return _BY_STATUS.get(http_status, ApiError)(http_status, code, message, details)
