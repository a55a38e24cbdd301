"""The provider's other calendars and the busy time read from them."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime


class CalendarKind(enum.StrEnum):
    CALDAV = "caldav"
    ICS = "ics"


class CalendarStatus(enum.StrEnum):
    PENDING = "pending"  # not read yet
    OK = "ok"
    ERROR = "error"  # the last read failed: the busy time before it stands


class Calendar(Base):
    __tablename__ = "calendars"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2048))
    username: Mapped[str | None] = mapped_column(String(200))
    # Fernet token of the password (APPOINTMENTS_SECRETS_KEY), never the password.
    password_secret: Mapped[str | None] = mapped_column(Text)
    write_bookings: Mapped[bool] = mapped_column(Boolean)
    # Bookings made before `write_bookings` was turned on are still to be written (the
    # notifications worker plans them, then clears this).
    backfill_due: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16))
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    # Of the busy time last read: an unchanged feed writes no busy row again.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    busy_count: Mapped[int] = mapped_column(Integer)
    sync_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("kind IN ('caldav', 'ics')", name="known_kind"),
        CheckConstraint("status IN ('pending', 'ok', 'error')", name="known_status"),
        Index("ix_calendars_provider_id_created_at_id", "provider_id", "created_at", "id"),
        Index("ix_calendars_sync_due_at", "sync_due_at"),
        Index(
            "ix_calendars_backfill_due",
            "provider_id",
            postgresql_where=text("backfill_due"),
            sqlite_where=text("backfill_due"),
        ),
    )


class BusyInterval(Base):
    """Busy time of one calendar of the provider (UTC), as last read."""

    __tablename__ = "busy_intervals"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    calendar_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("calendars.id", ondelete="CASCADE")
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("end_time > start_time", name="end_after_start"),
        # A slot's overlap with busy time, by provider and start (insert, recompute).
        Index("ix_busy_intervals_provider_id_start_time", "provider_id", "start_time"),
        Index("ix_busy_intervals_calendar_id", "calendar_id"),
    )
