"""`/api/v1/projects/{project}/webhooks`: a project's webhooks and their delivery log (docs/contract.md §4.11).

Everything here is the project's operators' (and admins'): a webhook's URL may itself hold a credential, and the
deliveries tell about every job. Creating and deleting one is recorded in the audit log - its URL without user,
password or query, never its secret. The secret is answered once, by the creation; the scheduler keeps it to sign
each delivery (docs/security.md, "Webhooks").
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Path, Query, Response, status

from jobctl.api.audit import Audit, audit_trail
from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.webhook_schemas import Delivery, DeliveryPage, DeliveryStatus, Webhook, WebhookCreate, WebhookCreated
from jobctl.scheduler import addresses
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import webhooks as store
from jobctl.scheduler.store.common import new_id, utcnow

router = APIRouter(prefix="/projects/{project}/webhooks", tags=["webhooks"], responses=responses(401, 403, 404, 422))

ProjectPath = Path(min_length=1, max_length=64, description="the project's name")
WebhookId = Path(min_length=1, max_length=32, description="the webhook's id")


def audited_url(url: str) -> str:
    """The URL as the audit log keeps it: without user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a webhook: its secret is answered only this once",
)
def create_webhook(
    body: WebhookCreate, project: str = ProjectPath, audit: Audit = Depends(audit_trail)
) -> WebhookCreated:
    """POST each change of a job of the project into one of `statuses` to `url`, signed with `secret` (generated
    when none is given). Outside development the URL's host must resolve to public addresses only (422)."""
    webhook_id = new_id()
    statuses = [s.value for s in body.statuses]
    details: dict[str, Any] = {"id": webhook_id, "url": audited_url(body.url), "statuses": statuses}
    refused: addresses.AddressRefused | None = None
    if audit.caller.can_operate(project):  # resolved before the transaction: a slow DNS holds no connection
        try:
            addresses.check_url(body.url, audit.services.settings)
        except addresses.AddressRefused as exc:
            refused = exc
    secret = body.secret or secrets.token_urlsafe(32)
    with audit.change("webhook.create", f"{project}/webhook/{webhook_id}", details, admin=False) as change:
        audit.caller.require_operator(project)
        if refused is not None:
            raise refused
        webhook = store.create_webhook(
            change.s,
            webhook_id=webhook_id,
            project=project,
            url=body.url,
            statuses=statuses,
            secret=secret,
            created_by=audit.caller.name,
            now=utcnow(),
        )
    return WebhookCreated(**Webhook.from_record(webhook).model_dump(), secret=secret)


@router.get("", response_model=list[Webhook], summary="The project's webhooks (never their secrets)")
def list_webhooks(
    project: str = ProjectPath, caller: Caller = Depends(current_user), services: Services = Depends(get_services)
) -> list[Webhook]:
    """The project's webhooks, oldest first."""
    caller.require_operator(project)
    with services.db.read() as s:
        return [Webhook.from_record(w) for w in store.list_webhooks(s, project)]


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a webhook with its delivery log; deliveries not sent yet are dropped",
)
def delete_webhook(
    project: str = ProjectPath, webhook_id: str = WebhookId, audit: Audit = Depends(audit_trail)
) -> Response:
    """Delete the webhook: nothing more is sent to it. 404 if the project has no webhook of that id."""
    with audit.change("webhook.delete", f"{project}/webhook/{webhook_id}", admin=False) as change:
        audit.caller.require_operator(project)
        deleted = store.delete_webhook(change.s, project, webhook_id)
        change.details.update(url=audited_url(deleted.url), statuses=list(deleted.statuses))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage, summary="A webhook's delivery log, newest first")
def list_deliveries(
    project: str = ProjectPath,
    webhook_id: str = WebhookId,
    delivery_status: DeliveryStatus | None = Query(None, alias="status", description="only deliveries in this state"),
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(50, ge=1, le=200),
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
) -> DeliveryPage:
    """Each delivery with its event, its state (`pending`, `delivered`, `failed`), its attempts, the last answer's
    HTTP status or the last error, when it is tried next and when it was delivered."""
    caller.require_operator(project)
    with services.db.read() as s:
        store.get_webhook(s, project, webhook_id)
        items, total = store.list_deliveries(
            s, webhook_id, status=delivery_status, offset=(page - 1) * page_size, limit=page_size
        )
    return DeliveryPage(items=[Delivery.from_record(d) for d in items], total=total, page=page, page_size=page_size)
