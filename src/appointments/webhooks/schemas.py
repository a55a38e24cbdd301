import uuid
from datetime import datetime
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, StrictBool

from appointments.scheduling.events import SUBSCRIBABLE
from appointments.schemas import RequestBody, ResponseBody, storable_text

SubscribableEvent = Literal[
    "reservation.held",
    "reservation.confirmed",
    "reservation.cancelled",
    "reservation.expired",
    "reservation.rescheduled",
    "calendar.sync_failed",
]
assert set(get_args(SubscribableEvent)) == {str(kind) for kind in SUBSCRIBABLE}


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    if port == 0:
        raise ValueError("the URL's port must be between 1 and 65535")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials do not belong in the URL; verify the signature instead")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        raise ValueError("the URL must not contain spaces or control characters")
    return value


WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        # What the schema can say of the rules below (http or https, no spaces or
        # control characters), so generated clients and fuzzers know it too.
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f]+$",
        examples=["https://example.com/hooks/appointments"],
    ),
    AfterValidator(storable_text),
    AfterValidator(_http_url),
]


def _distinct(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class WebhookIn(RequestBody):
    url: WebhookUrl
    events: Annotated[list[SubscribableEvent], AfterValidator(_distinct)] | None = Field(
        default=None,
        min_length=1,
        description="The event types to send; omitted or null: every type.",
    )
    provider_id: str | None = Field(
        default=None,
        max_length=64,
        description="Whose bookings: one provider's, or null for every provider (admins only). "
        "A provider's own endpoints are always its own.",
    )
    description: Annotated[str, AfterValidator(storable_text)] | None = Field(
        default=None, max_length=500, pattern=r"^[^\x00]*$"
    )


class WebhookReplace(WebhookIn):
    enabled: StrictBool = Field(default=True, description="Whether events are sent to it.")


class WebhookOut(ResponseBody):
    id: uuid.UUID
    url: str
    events: list[str]
    provider_id: uuid.UUID | None
    description: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="`whsec_` + base64 of the signing key. Shown in this answer only: store it.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


DeliveryState = Literal["pending", "delivered", "failed"]


class DeliveryOut(ResponseBody):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: str
    status: DeliveryState
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt.")
    delivered_at: datetime | None
    created_at: datetime


class PingOut(ResponseBody):
    event_id: uuid.UUID
