import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime


class AppointmentType(Base):
    """How long a provider's appointments of one kind last, and on what terms they are booked.

    Deleting a type only marks it (`deleted_at`): its booked appointments keep their
    times, and a later reschedule of one of them still knows the rules it was booked under.
    """

    __tablename__ = "appointment_types"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer)
    min_notice_minutes: Mapped[int | None] = mapped_column(Integer)
    max_advance_days: Mapped[int | None] = mapped_column(Integer)
    max_per_day: Mapped[int | None] = mapped_column(Integer)
    change_notice_minutes: Mapped[int] = mapped_column(Integer)
    # Clients who share one appointment: more than 1 books group sessions.
    capacity: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="positive_duration"),
        CheckConstraint(
            "buffer_before_minutes >= 0 AND buffer_after_minutes >= 0",
            name="buffers_not_negative",
        ),
        CheckConstraint("max_per_day IS NULL OR max_per_day >= 1", name="daily_cap_positive"),
        CheckConstraint("capacity BETWEEN 1 AND 500", name="capacity_in_range"),
        # The keyset listing of one provider's types by (created_at, id).
        Index("ix_appointment_types_provider_id_created_at_id", "provider_id", "created_at", "id"),
    )
