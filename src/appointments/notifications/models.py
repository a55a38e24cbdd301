"""Webhook endpoints, and the deliveries of events (`scheduling.events`) to them, by mail
and to the providers' CalDAV calendars."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from appointments.busy.models import Calendar
from appointments.db import Base, UTCDateTime


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    # Null: every provider's events (created by an admin).
    provider_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    description: Mapped[str | None] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean)
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_endpoints_provider_id_created_at_id", "provider_id", "created_at", "id"),
        Index("ix_webhook_endpoints_created_at_id", "created_at", "id"),
    )


class Channel(enum.StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    # A booking written to (or removed from) a provider's CalDAV calendar.
    CALENDAR = "calendar"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    # A reminder whose appointment was cancelled or moved before it was due.
    SKIPPED = "skipped"


class Delivery(Base):
    """One event to one destination: a webhook endpoint or a mail recipient."""

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("events.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    provider_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Calendar writes only: which of the provider's calendars.
    calendar_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey(Calendar.id, ondelete="CASCADE")
    )
    # Mail only: to whom, and which message (confirmed, reminder, provider_cancelled...).
    recipient: Mapped[str | None] = mapped_column(String(320))
    template: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    # Attempts begun; the one in flight counts. Its outcome is recorded only by the
    # worker that began it (the update checks this number).
    attempts: Mapped[int] = mapped_column(Integer)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    # When pending: when it is due. While an attempt is in flight, the end of its
    # lease: a worker that dies mid-send leaves it due again after that.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'delivered', 'failed', 'skipped')", name="known_status"
        ),
        CheckConstraint("channel IN ('webhook', 'email', 'calendar')", name="known_channel"),
        # The workers' queue: what is pending, by when it is due.
        Index(
            "ix_deliveries_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # One endpoint's deliveries, newest first.
        Index("ix_deliveries_endpoint_id_created_at_id", "endpoint_id", "created_at", "id"),
        Index("ix_deliveries_event_id", "event_id"),
    )
