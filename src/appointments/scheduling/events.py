"""The outbox's table: what happened to a reservation, written in the change's own
transaction by the domain that made it (`scheduling.outbox`), and read by the
observers (notifications) that tell the world. No domain imports an observer."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime


class EventType(enum.StrEnum):
    HELD = "reservation.held"
    CONFIRMED = "reservation.confirmed"
    CANCELLED = "reservation.cancelled"
    EXPIRED = "reservation.expired"
    RESCHEDULED = "reservation.rescheduled"
    CALENDAR_SYNC_FAILED = "calendar.sync_failed"
    PING = "ping"


# What an endpoint may subscribe to; `ping` is sent on request whatever it subscribed.
SUBSCRIBABLE = tuple(kind for kind in EventType if kind is not EventType.PING)


class Event(Base):
    """One change of a reservation, written in the change's own transaction (the outbox).

    It carries a snapshot of the reservation as it was right after the change, so
    a delivery made later still tells what happened then. The dispatcher turns
    each event into deliveries (webhooks, mail) once and marks it dispatched.
    """

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    provider_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # A ping goes to this endpoint only.
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The reservation's snapshot (null for a ping). No foreign key: events outlive rows.
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    slot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    client_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    appointment_type_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str | None] = mapped_column(String(16))
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reservation_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revision: Mapped[int | None] = mapped_column(Integer)
    series_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    seats: Mapped[int | None] = mapped_column(Integer)
    # A reschedule's old times.
    # A calendar's event (`calendar.sync_failed`): which one, and why.
    calendar_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    detail: Mapped[str | None] = mapped_column(String(1000))
    previous_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    previous_end: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The dispatcher's queue: only undispatched events are in the index.
        Index(
            "ix_events_undispatched",
            "occurred_at",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
        Index("ix_events_reservation_id", "reservation_id"),
    )
