"""Request and response models of the webhook routes (docs/contract.md §4.11), and the job JSON a delivery
carries (`job_json`, the same the API answers with)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from jobctl.api.schemas import Job, Request, UTCTime
from jobctl.api.waiting import waiting_for
from jobctl.scheduler.records import JobRecord
from jobctl.scheduler.services import Services
from jobctl.scheduler.store.webhooks import DeliveryRecord, WebhookRecord
from jobctl.states import JobStatus

MAX_URL = 2048


def job_json(job: JobRecord, flower: str | None, waiting_for: str | None = None) -> dict[str, Any]:
    """The job as `GET /api/v1/jobs/{id}` answers it, as JSON values (`waiting_for`: why it waits, if PENDING)."""
    return Job.from_record(job, flower, waiting_for=waiting_for).model_dump(mode="json", by_alias=True)


def job_renderer(services: Services) -> Callable[[JobRecord], dict[str, Any]]:
    """`job_json` of a job with what the job route adds to it: for a PENDING job, why it waits (`api.waiting`,
    read as `GET /api/v1/jobs/{id}` reads it)."""
    flower = services.settings.flower_base_url

    def render(job: JobRecord) -> dict[str, Any]:
        reason = None
        if job.status is JobStatus.PENDING:
            reason = services.db.query(lambda conn: waiting_for(services, conn, [job])).get(job.id)
        return job_json(job, flower, reason)

    return render


def _webhook_url(value: str) -> str:
    """An absolute http or https URL with a host, without spaces or control characters."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("a URL holds no spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    if port == 0:
        raise ValueError("the URL's port must be 1-65535")
    return value


def _distinct(statuses: list[JobStatus]) -> list[JobStatus]:
    return list(dict.fromkeys(statuses))


WebhookUrl = Annotated[str, Field(min_length=1, max_length=MAX_URL), AfterValidator(_webhook_url)]
Secret = Annotated[
    str,
    Field(
        min_length=16,
        max_length=256,
        pattern=r"^[\x21-\x7e]+$",
        description="16-256 printable ASCII characters, no spaces",
    ),
]


class WebhookCreate(Request):
    url: WebhookUrl = Field(description="where deliveries are POSTed: http:// or https://, up to 2048 characters")
    statuses: Annotated[list[JobStatus], Field(min_length=1, max_length=50), AfterValidator(_distinct)] = Field(
        description="the states whose arrival is delivered: a job's change into one of them"
    )
    secret: Secret | None = Field(None, description="signs the deliveries; omitted: one is generated")


class Webhook(BaseModel):
    id: str
    project: str
    url: str
    statuses: list[JobStatus]
    created_at: UTCTime
    created_by: str

    @classmethod
    def from_record(cls, webhook: WebhookRecord) -> Webhook:
        return cls(
            id=webhook.id,
            project=webhook.project,
            url=webhook.url,
            statuses=[JobStatus(s) for s in webhook.statuses],
            created_at=webhook.created_at,
            created_by=webhook.created_by,
        )


class WebhookCreated(Webhook):
    secret: str = Field(description="the key of the deliveries' signatures; shown only in this answer, never again")


DeliveryStatus = Literal["pending", "delivered", "failed"]


class DeliveryEvent(BaseModel):
    """The event a delivery reports."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    action: str
    from_: JobStatus | None = Field(alias="from")
    to: JobStatus
    at: UTCTime
    actor: str


class Delivery(BaseModel):
    id: str = Field(description="the delivery's id, sent as X-Jobctl-Delivery and `delivery_id`")
    job_id: str
    event: DeliveryEvent
    status: DeliveryStatus = Field(description="pending (to be tried, again), delivered, or failed for good")
    attempts: int = Field(description="attempts made so far")
    last_status: int | None = Field(description="the HTTP status of the last answer, if there was one")
    last_error: str | None = Field(description="why the last attempt failed (null once delivered)")
    next_attempt_at: UTCTime | None = Field(description="when a pending delivery is tried next")
    delivered_at: UTCTime | None
    created_at: UTCTime

    @classmethod
    def from_record(cls, delivery: DeliveryRecord) -> Delivery:
        return cls(
            id=delivery.id,
            job_id=delivery.job_id,
            event=DeliveryEvent(
                id=delivery.event_id,
                action=delivery.action,
                from_=JobStatus(delivery.from_status) if delivery.from_status else None,
                to=JobStatus(delivery.to_status),
                at=delivery.event_at,
                actor=delivery.actor,
            ),
            status=delivery.status,
            attempts=delivery.attempts,
            last_status=delivery.last_status,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )


class DeliveryPage(BaseModel):
    items: list[Delivery]
    total: int = Field(description="how many deliveries match, over all pages")
    page: int
    page_size: int
