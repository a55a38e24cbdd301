import enum
import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime


class SlotStatus(enum.StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    # Withdrawn by the provider. Kept (never shown, never bookable) so that the
    # reservations that once took it keep their slot; re-publishing revives it.
    REMOVED = "removed"


class SlotRecord(Protocol):
    """What answers need of a slot: a `Slot`, or a plain row of the slots table."""

    id: uuid.UUID
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: str
    hold_expires_at: datetime | None


class Slot(Base):
    """One bookable interval of a provider.

    `status` is what was last written. A `reserved` slot whose `hold_expires_at`
    has passed is free: every read and the reserve itself treat it as available,
    whether or not the sweeper has written that down yet.
    """

    __tablename__ = "slots"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=SlotStatus.AVAILABLE)
    # Copy of the live hold's expiry, so "is this slot free now?" needs no join.
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # One slot per provider and start; also the index behind listing by start time.
        UniqueConstraint("provider_id", "start_time"),
        CheckConstraint("end_time > start_time", name="end_after_start"),
        # Every status, 'removed' included, as migration 0002 wrote it.
        CheckConstraint(
            "status IN ('available', 'reserved', 'confirmed', 'removed')", name="known_status"
        ),
        CheckConstraint(
            "(status = 'reserved') = (hold_expires_at IS NOT NULL)",
            name="hold_expiry_only_when_reserved",
        ),
        # Lets the sweeper find stale holds without scanning every slot.
        Index(
            "ix_slots_stale_hold",
            "hold_expires_at",
            postgresql_where=text("status = 'reserved'"),
            sqlite_where=text("status = 'reserved'"),
        ),
    )
