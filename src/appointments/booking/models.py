import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime


class ReservationStatus(enum.StrEnum):
    HELD = "held"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# A reservation in one of these states occupies its slot.
LIVE_STATUSES = (ReservationStatus.HELD, ReservationStatus.CONFIRMED)


class Reservation(Base):
    __tablename__ = "reservations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("slots.id", ondelete="CASCADE"))
    # Denormalised from the slot so every query can be scoped (and later sharded) by provider.
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clients.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    # The slot's times, copied (slots never move) so reservation lists filter and
    # sort by appointment time within one client or provider without a join.
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "status IN ('held', 'confirmed', 'expired', 'cancelled')", name="known_status"
        ),
        # The database's own guarantee against double booking: at most one live
        # reservation per slot, whatever the application does.
        Index(
            "uq_reservations_one_live_per_slot",
            "slot_id",
            unique=True,
            postgresql_where=text("status IN ('held', 'confirmed')"),
            sqlite_where=text("status IN ('held', 'confirmed')"),
        ),
        # The sweeper's search for stale holds.
        Index(
            "ix_reservations_held_expires_at",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
        # Keyset listings of one client's / one provider's reservations by appointment time.
        Index("ix_reservations_client_id_start_time_id", "client_id", "start_time", "id"),
        Index("ix_reservations_provider_id_start_time_id", "provider_id", "start_time", "id"),
        # For ON DELETE CASCADE from slots (the partial unique index covers live rows only).
        Index("ix_reservations_slot_id", "slot_id"),
    )
