"""Every error the API answers with, mapped to HTTP in this one place.

Body: `{"error": {"code": ..., "message": ...}}` (docs/contract.md §4.1). A refused operation (409 `Conflict`
carrying a job state) also gives the job's `status` and the operations `allowed` now, both inside `error` and
at the top level; a refused bulk submission (422 `InvalidItems`) lists each refused job as `items`. Request
validation failures are 422 (malformed JSON: 400), unknown routes 404 and wrong methods 405, a lost database or
Redis connection 503 (retry), all in the same shape; so is 429 `too_many_requests` (with `Retry-After`) for an
address that sent too many invalid tokens (api.ratelimit), and so are the request guard's refusals (api.guard: 413
for an oversized body, 400 for unreadable JSON, 422 for NUL characters).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from jobctl.api.schemas import ErrorBody
from jobctl.scheduler.errors import (
    Conflict,
    Forbidden,
    Invalid,
    InvalidItems,
    JobctlError,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)

#: domain error -> HTTP status; looked up along the class's MRO, so subclasses inherit their parent's status
STATUS: dict[type[JobctlError], int] = {
    NotFound: 404,
    Invalid: 422,
    Conflict: 409,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyRequests: 429,
    Unavailable: 503,
    JobctlError: 400,
}

#: HTTP status -> error code for errors raised by the framework rather than the domain
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}


def status_of(exc: JobctlError) -> int:
    """The HTTP status `exc` is answered with."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A JSON error answer in the API's one error shape; `extra` goes inside `error`."""
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(body, status_code=status, headers=headers)


def _jobctl_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobctlError)
    status = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, Conflict) and exc.status is not None:
        # A refused operation: the 409 "carries" status and allowed (docs/contract.md §4); give them in both places.
        error = {"code": exc.code, "message": exc.message, "status": exc.status, "allowed": exc.allowed}
        return JSONResponse({"error": error, "status": exc.status, "allowed": exc.allowed}, status_code=status)
    if isinstance(exc, InvalidItems):
        items = [{"index": index, "message": message} for index, message in exc.items]
        return error_response(status, exc.code, exc.message, headers, items=items)
    return error_response(status, exc.code, exc.message, headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "bad_request", "the request body is not valid JSON")
    details = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors]
    message = "; ".join(f"{_where(d['loc'])}: {d['msg']}" for d in details)
    return error_response(422, "invalid", message or "invalid request", details=details)


def _where(loc: Any) -> str:
    """`body.target.name` -> `target.name`, `query.page` -> `page`: where the client put the bad value."""
    parts = list(loc)
    return ".".join(parts[1:] if len(parts) > 1 else parts)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # the router names only the first route of the path; a path may have several
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(exc.status_code, code, message, headers or None)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on the request's path."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database or Redis dropped the request's connection (a restart, a terminated backend). The pools
    reconnect on the next request, so this is a clean 503 with Retry-After, not a 500. Retrying is safe: an
    operation that did commit before the connection dropped is refused (409) the second time."""
    log.warning("%s %s: service unavailable: %s", request.method, request.url.path, str(exc).splitlines()[0])
    return error_response(503, "unavailable", "the database or Redis is unavailable; retry", {"Retry-After": "1"})


def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal server error")


def install(app: FastAPI) -> None:
    """Register the exception handlers that give every error the API's shape."""
    app.add_exception_handler(JobctlError, _jobctl_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for unavailable in (OperationalError, RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(unavailable, _unavailable)
    app.add_exception_handler(Exception, _unexpected_error)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the error body for these statuses (with 401, 429 too: see
    `_with_throttled`)."""
    return {
        status: {"model": ErrorBody, "description": HTTP_CODES.get(status, "error"), **_headers_of(status)}
        for status in _with_throttled(statuses)
    }


def json_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Like `responses`, for a route whose success is not JSON (text, a stream): FastAPI would document a `model`
    under the route's own media type, so these name `application/json` and the `ErrorBody` schema themselves."""
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {
        status: {
            "description": HTTP_CODES.get(status, "error"),
            "content": {"application/json": {"schema": schema}},
            **_headers_of(status),
        }
        for status in _with_throttled(statuses)
    }


def _with_throttled(statuses: tuple[int, ...]) -> tuple[int, ...]:
    """A route that may answer 401 may also answer 429: an invalid token from an address that sent too many."""
    return (*statuses, 429) if 401 in statuses and 429 not in statuses else statuses


def _headers_of(status: int) -> dict[str, Any]:
    """The documented response headers of an error status: a 429 says when to retry."""
    if status != 429:
        return {}
    retry_after = {"description": "seconds until the address may try again", "schema": {"type": "integer"}}
    return {"headers": {"Retry-After": retry_after}}


#: what any route may answer: a malformed body (400), an oversized one (413), NUL in the URL (422); see api.guard
COMMON_ERRORS = (400, 413, 422)
