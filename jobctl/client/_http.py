"""The one layer between a `Call` and httpx, for the sync and the async client alike: the address, the request
(`build`), the reading of the answer or of the error it is (`read`), what "no answer" becomes (`unreachable`),
and the event stream's format (`parse_sse`). The clients only send."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from jobctl.client._calls import Call
from jobctl.client._errors import ApiError, BadAnswer, Error, Unreachable, api_error

T = TypeVar("T")
API = "/api/v1"
DEFAULT_PORT = 8000
#: how long the event stream may stay silent (the server sends a keepalive every few seconds)
STREAM_READ_TIMEOUT_S = 60.0


def default_url() -> str:
    """`JOBCTL_URL`, else the local API on `JOBCTL_API_PORT` (8000): `http://127.0.0.1:<port>`."""
    url = os.environ.get("JOBCTL_URL")
    if url:
        return url
    return f"http://127.0.0.1:{os.environ.get('JOBCTL_API_PORT') or DEFAULT_PORT}"


def base_url(url: str | None) -> str:
    """The server's address as the clients keep it: `url`, else `default_url()`, without a trailing `/`."""
    return (url or default_url()).rstrip("/")


def env_token() -> str | None:
    """The token in `JOBCTL_TOKEN`, if any."""
    return os.environ.get("JOBCTL_TOKEN") or None


def shown(url: str) -> str:
    """`url` for a message: without a password it may carry (`https://user:***@host`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def build(
    http: httpx.Client | httpx.AsyncClient, token: str | None, call: Call[Any], timeout: httpx.Timeout | None = None
) -> httpx.Request:
    """The request of `call` on `http` (whose base URL is the server's), carrying `token`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    extensions = {"timeout": timeout.as_dict()} if timeout is not None else None
    return http.build_request(
        call.method, API + call.path, params=call.params, json=call.json, headers=headers, extensions=extensions
    )


def unreachable(url: str, exc: httpx.HTTPError, what: str = "reach the jobctl API") -> Unreachable:
    """The `Unreachable` for a request to `url` that got no answer."""
    reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    return Unreachable(f"cannot {what} at {shown(url)}: {reason}")


def error_of(answer: httpx.Response, token: str | None = None) -> ApiError:
    """The error an error answer is, readable even when its body is not the API's error shape."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    fallback = f"{answer.request.url.path} answered {answer.status_code} {answer.reason_phrase or 'error'}"
    error = api_error(answer.status_code, body, fallback)
    error.redact(token)
    return error


def read(call: Call[T], answer: httpx.Response, token: str | None = None) -> T:
    """The answer to `call`, parsed; or raise the error it is (`ApiError`, or `BadAnswer` for a success answer
    that is not what the API promises)."""
    if answer.is_error:
        raise error_of(answer, token)
    try:
        if call.raw:
            return call.parse(answer.content)
        if call.text:
            return call.parse(answer.text)
        if not answer.content:
            return call.parse(None)
        try:
            body = answer.json()
        except ValueError as exc:
            raise BadAnswer(f"{call.method} {call.path} answered {answer.status_code} with something not JSON") from exc
        return call.parse(body)
    except Error as exc:
        exc.redact(token)
        raise


def send(http: httpx.Client, url: str, token: str | None, call: Call[T]) -> T:
    """Send `call` and read its answer."""
    try:
        answer = http.send(build(http, token, call))
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc
    return read(call, answer, token)


async def asend(http: httpx.AsyncClient, url: str, token: str | None, call: Call[T]) -> T:
    """`send`, on an `httpx.AsyncClient`."""
    try:
        answer = await http.send(build(http, token, call))
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc
    return read(call, answer, token)


def stream_timeout(read_timeout: float | None) -> httpx.Timeout:
    """The event stream's timeouts: 10 s to connect, `read_timeout` (None: none) between two lines."""
    return httpx.Timeout(10, read=read_timeout)


# -- the event stream ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerEvent:
    """One Server-Sent Event: its name (`message` if unnamed) and its data lines joined by newlines."""

    name: str
    data: str


class SSEParser:
    """Turns a `text/event-stream`, fed line by line, into events (comments, `id:` and `retry:` skipped)."""

    def __init__(self) -> None:
        self._name = "message"
        self._data: list[str] = []

    def feed(self, raw: str) -> ServerEvent | None:
        """The event this line completes (an empty line ends one), else None."""
        line = raw.rstrip("\r\n")
        if not line:
            event = ServerEvent(self._name, "\n".join(self._data)) if self._data else None
            self._name, self._data = "message", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        return None


def parse_sse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events in a `text/event-stream`, given line by line."""
    parser = SSEParser()
    for line in lines:
        event = parser.feed(line)
        if event is not None:
            yield event


def job_data(event: ServerEvent | None, url: str) -> dict[str, Any] | None:
    """The data of a `job` event, or None for any other event; `Unreachable` if the data is not a JSON
    object (the stream is not a jobctl server's)."""
    if event is None or event.name != "job":
        return None
    try:
        data = json.loads(event.data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise Unreachable(f"the event stream of {shown(url)} sent something that is not a job event")
    return data


def job_events(lines: Iterable[str], url: str) -> Iterator[dict[str, Any]]:
    """The data of each `job` event in a stream given line by line."""
    for event in parse_sse(lines):
        data = job_data(event, url)
        if data is not None:
            yield data
