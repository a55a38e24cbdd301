"""A provider's standing week: weekly hours, date overrides and time off, from which
the service keeps the provider's slots published `horizon_days` ahead."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime


class Schedule(Base):
    """One per provider. `rules` are [{"weekday", "start", "end"}] in the provider's
    zone ("end" 24:00 is midnight); `published_through` is the last local date the
    slots are published for (the roll goes on from there)."""

    __tablename__ = "schedules"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    horizon_days: Mapped[int] = mapped_column(Integer)
    published_through: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("horizon_days BETWEEN 1 AND 730", name="horizon_in_range"),)


class ScheduleOverride(Base):
    """A date's own hours, instead of its weekday's: [{"start", "end"}] wall-clock
    times; none closes the day."""

    __tablename__ = "schedule_overrides"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    intervals: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TimeOff(Base):
    """A stretch the provider is away: no slot inside stays free or gets published."""

    __tablename__ = "time_off"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("end_time > start_time", name="end_after_start"),
        # The provider's time off by start (the listing's keyset, the overlap lookups).
        Index("ix_time_off_provider_id_start_time_id", "provider_id", "start_time", "id"),
    )
