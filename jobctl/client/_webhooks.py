"""`client.webhooks`: a project's webhooks and their delivery logs (docs/contract.md §4.11), for `Client` and,
with coroutines, `AsyncClient`. Both send the calls of `_calls`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from jobctl.client import _calls as calls
from jobctl.client._calls import Call
from jobctl.client._models import DeliveryPage, NewWebhook, Webhook

T = TypeVar("T")


class _Sends(Protocol):
    def call(self, call: Call[T]) -> T: ...


class _SendsAsync(Protocol):
    async def call(self, call: Call[T]) -> T: ...


class Webhooks:
    """`client.webhooks`: a project's webhooks (operators and admins)."""

    def __init__(self, client: _Sends) -> None:
        self._client = client

    def create(self, project: str, url: str, statuses: Sequence[str], *, secret: str | None = None) -> NewWebhook:
        """A new webhook POSTing each change of the project's jobs into one of `statuses` to `url`, signed with
        `secret` (None: the server generates one). The answer's `secret` is shown only this once. `Invalid` for
        a URL or statuses the server refuses."""
        return self._client.call(calls.create_webhook(project, url, statuses, secret))

    def list(self, project: str) -> list[Webhook]:
        """The project's webhooks, oldest first (never their secrets)."""
        return self._client.call(calls.list_webhooks(project))

    def delete(self, project: str, webhook_id: str) -> None:
        """Delete the webhook with its delivery log; `NotFound` if the project has none of that id."""
        self._client.call(calls.delete_webhook(project, webhook_id))

    def deliveries(
        self, project: str, webhook_id: str, *, status: str | None = None, page: int = 1, page_size: int = 50
    ) -> DeliveryPage:
        """One page of the webhook's delivery log, newest first (only those in `status`: `pending`,
        `delivered` or `failed`)."""
        return self._client.call(calls.webhook_deliveries(project, webhook_id, status, page, page_size))


class AsyncWebhooks:
    """`client.webhooks` of an `AsyncClient`: `Webhooks` with coroutines."""

    def __init__(self, client: _SendsAsync) -> None:
        self._client = client

    async def create(self, project: str, url: str, statuses: Sequence[str], *, secret: str | None = None) -> NewWebhook:
        """`Webhooks.create`: the answer's `secret` is shown only this once."""
        return await self._client.call(calls.create_webhook(project, url, statuses, secret))

    async def list(self, project: str) -> list[Webhook]:
        """`Webhooks.list`."""
        return await self._client.call(calls.list_webhooks(project))

    async def delete(self, project: str, webhook_id: str) -> None:
        """`Webhooks.delete`."""
        await self._client.call(calls.delete_webhook(project, webhook_id))

    async def deliveries(
        self, project: str, webhook_id: str, *, status: str | None = None, page: int = 1, page_size: int = 50
    ) -> DeliveryPage:
        """`Webhooks.deliveries`: one page of the delivery log."""
        return await self._client.call(calls.webhook_deliveries(project, webhook_id, status, page, page_size))
