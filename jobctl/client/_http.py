"""Sending a `Call` over httpx (sync and async), reading the answer or the error, and the event stream."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from jobctl.client._calls import Call
from jobctl.client._errors import ApiError, BadAnswer, Unreachable, api_error

T = TypeVar("T")
API = "/api/v1"


def default_url() -> str:
    """`JOBCTL_URL`, else the local API on `JOBCTL_API_PORT` (8000)."""
    url = os.environ.get("JOBCTL_URL")
    if url:
        return url
    return f"http://127.0.0.1:{os.environ.get('JOBCTL_API_PORT') or 8000}"


def headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def reason(exc: httpx.HTTPError) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def unreachable(url: str, exc: httpx.HTTPError) -> Unreachable:
    return Unreachable(f"cannot reach the jobctl API at {url}: {reason(exc)}")


def error_of(answer: httpx.Response) -> ApiError:
    """The error for an error answer, readable even when the body is not the API's error shape."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    fallback = f"{answer.request.url.path} answered {answer.status_code} {answer.reason_phrase or 'error'}"
    return api_error(answer.status_code, body, fallback)


def read(call: Call[T], answer: httpx.Response) -> T:
    """The answer to `call`, parsed; or the error it is."""
    if answer.is_error:
        raise error_of(answer)
    if call.text:
        return call.parse(answer.text)
    if not answer.content:
        return call.parse(None)
    try:
        body = answer.json()
    except ValueError as exc:
        raise BadAnswer(f"{call.method} {call.path} answered {answer.status_code} with something not JSON") from exc
    return call.parse(body)


def send(http: httpx.Client, url: str, token: str | None, call: Call[T]) -> T:
    try:
        answer = http.request(call.method, API + call.path, params=call.params, json=call.json, headers=headers(token))
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc
    return read(call, answer)


async def asend(http: httpx.AsyncClient, url: str, token: str | None, call: Call[T]) -> T:
    try:
        answer = await http.request(
            call.method, API + call.path, params=call.params, json=call.json, headers=headers(token)
        )
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc
    return read(call, answer)


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


def job_data(event: ServerEvent) -> dict[str, Any] | None:
    """The data of a `job` event, or None for any other event."""
    if event.name != "job":
        return None
    data = json.loads(event.data)
    return data if isinstance(data, dict) else None
