"""One base error; one subclass per failure. The API maps them to HTTP in one place (api/errors.py)."""

from __future__ import annotations


class JobctlError(Exception):
    """Base of every error jobctl raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(JobctlError):
    code = "not_found"


class Invalid(JobctlError):
    """The request is well-formed but its content is refused (docs/contract.md §4: 422)."""

    code = "invalid"


class InvalidItems(Invalid):
    """Some items of a request for many (a bulk submission) are refused, and nothing was changed: `causes` are
    (index, the error that refused it); `items`, (index, its message)."""

    def __init__(self, message: str, causes: list[tuple[int, JobctlError]]) -> None:
        super().__init__(message)
        self.causes = causes

    @property
    def items(self) -> list[tuple[int, str]]:
        return [(index, exc.message) for index, exc in self.causes]


class Conflict(JobctlError):
    """An operation the job's current state does not allow (docs/contract.md §4: 409)."""

    code = "conflict"

    def __init__(self, message: str, status: str | None = None, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.allowed = allowed or []


class Unauthorized(JobctlError):
    code = "unauthorized"


class Forbidden(JobctlError):
    code = "forbidden"


class TooManyRequests(JobctlError):
    """Refused for now: the caller has sent too many invalid tokens (api.ratelimit); retry after `retry_after`
    seconds (at least 1)."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class Unavailable(JobctlError):
    """A service jobctl needs (Redis, the database) did not answer."""

    code = "unavailable"
