"""The request guard: input every route would refuse anyway, refused once, before any route sees it.

An ASGI middleware in front of the routes. It answers, in the API's error shape (docs/contract.md §4):

- 413 when the body is larger than `MAX_BODY_BYTES` (announced by `Content-Length` or found while reading);
- 400 when a JSON body is not UTF-8, not JSON, uses `NaN`/`Infinity` or numbers beyond a float's range, holds
  lone surrogates, or is nested deeper than `MAX_JSON_DEPTH`;
- 422 when a JSON string, an object key, the URL's path or a query parameter holds a NUL character (the
  databases cannot store or search for it: PostgreSQL refuses NUL in text);
- 400 when the query string carries a credential (`token`, `access_token`): tokens travel in the
  `Authorization` header only, never in a URL, which access logs, proxies and browser histories keep;
- 400 when the `Authorization` header is longer than `MAX_AUTHORIZATION` bytes (no token jobctl issues is
  near it: a long one is refused before it is hashed and looked up).

Everything else passes through unchanged; a body that was read is handed on to the route as it came.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobctl.api.errors import error_response

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
MAX_AUTHORIZATION = 1024
CREDENTIAL_PARAMS = frozenset({"token", "access_token"})

_NUL = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")


class Refusal(Exception):
    """Why a request is refused: the HTTP status, the error code and a message for the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str) -> Refusal:
    """A 400: the request cannot be read at all."""
    return Refusal(400, "bad_request", message)


def invalid(message: str) -> Refusal:
    """A 422: the request can be read, but holds a value no route accepts."""
    return Refusal(422, "invalid", message)


class RequestGuard:
    """ASGI middleware: refuse oversized bodies, malformed JSON and NUL characters before any route runs."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_body = max_body
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            check_url(scope)
            check_authorization(headers)
            check_length(headers, self.max_body)
            body = await self._read(receive)
            if body is None:  # the client went away while sending
                return
            if body and is_json(headers.get("content-type")):
                check_json(body, self.max_depth)
        except Refusal as refusal:
            await error_response(refusal.status, refusal.code, refusal.message)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None if the client disconnected; `Refusal` (413) once it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(self.max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that first hands over the body already read, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "too_large", f"the request body is larger than {limit} bytes")


def check_length(headers: Headers, limit: int) -> None:
    """`Refusal` (413) if `Content-Length` announces more than `limit` bytes; 400 if it is not a number."""
    length = headers.get("content-length")
    if length is None:
        return
    if not length.strip().isdigit():
        raise bad_request("the Content-Length header is not a number")
    if int(length) > limit:
        raise _too_large(limit)


def check_url(scope: Scope) -> None:
    """`Refusal` (422) if the URL's path or a query parameter (name or value) holds a NUL character."""
    if _NUL in scope.get("path", ""):
        raise invalid("the URL path must not contain NUL characters")
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if _NUL in name or _NUL in value:
            raise invalid(f"query parameter {_shown(name)!r} must not contain NUL characters")
        if name.lower() in CREDENTIAL_PARAMS:
            raise bad_request(
                f"query parameter {name!r}: send the token in the header 'Authorization: Bearer <token>', never in "
                "the URL (URLs are logged)"
            )


def check_authorization(headers: Headers) -> None:
    """`Refusal` (400) if the `Authorization` header is longer than `MAX_AUTHORIZATION` bytes."""
    value = headers.get("authorization")
    if value is not None and len(value) > MAX_AUTHORIZATION:
        raise bad_request(f"the Authorization header is longer than {MAX_AUTHORIZATION} bytes")


def is_json(content_type: str | None) -> bool:
    """Whether a body of this media type is parsed as JSON by the routes (`application/json`, `...+json`)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def check_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The parsed body; `Refusal` if it is not strict UTF-8 JSON within `max_depth` or holds a NUL character."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"the request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError:
        raise bad_request("the request body is not valid JSON") from None
    except RecursionError:
        raise bad_request(f"the request body is nested more than {max_depth} levels deep") from None
    except _NotANumber as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None
    except ValueError:  # Python's limit on the digits of an integer
        raise bad_request("the request body holds a number with too many digits") from None
    _check_values(value, max_depth)
    return value


class _NotANumber(ValueError):
    """A number JSON has no place for: NaN, Infinity, or one beyond a float's range."""


def _no_constant(name: str) -> Any:
    raise _NotANumber(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotANumber(f"the number {text[:40]} is out of range")
    return number


def _check_values(root: Any, max_depth: int) -> None:
    """Walk the parsed JSON without recursion: depth, lone surrogates and NUL characters in strings and keys."""
    stack: list[tuple[Any, int, str]] = [(root, 0, "body")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, dict | list):
            if depth >= max_depth:
                raise bad_request(f"the request body is nested more than {max_depth} levels deep")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_string(key, f"{where} (a key)")
                    stack.append((item, depth + 1, f"{where}.{key}"))
            else:
                stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_string(value, where)


def _check_string(text: str, where: str) -> None:
    if _SURROGATE.search(text):
        raise bad_request(f"{_shown(where)}: the string is not valid Unicode (a lone surrogate)")
    if _NUL in text:
        raise invalid(f"{_shown(where)}: must not contain NUL characters")


def _shown(where: str) -> str:
    """A location safe to echo: no NUL or surrogates, at most 200 characters."""
    clean = _SURROGATE.sub("?", where.replace(_NUL, "\\0"))
    return clean if len(clean) <= 200 else clean[:197] + "..."
