"""The tables every domain stands on: slots, and the reservations (holds and bookings)
that occupy them. The rules about them are in `scheduling.rules`."""

import enum
import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from appointments.db import Base, UTCDateTime
from appointments.scheduling import rules


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
    busy: bool


class SlotSource(enum.StrEnum):
    WINDOW = "window"
    SCHEDULE = "schedule"


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
    # Who published it: an explicit window ('window') or the standing schedule
    # ('schedule'); a schedule's republish withdraws only its own slots.
    source: Mapped[str] = mapped_column(
        String(16), default=SlotSource.WINDOW, server_default=SlotSource.WINDOW.value
    )
    # Overlapped by busy time of the provider's other calendar (busy_intervals): not
    # bookable, whatever its status; written by each sync and at each insert.
    busy: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

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
        CheckConstraint("source IN ('window', 'schedule')", name="known_source"),
        # Lets the sweeper find stale holds without scanning every slot.
        Index(
            "ix_slots_stale_hold",
            "hold_expires_at",
            postgresql_where=text("status = 'reserved'"),
            sqlite_where=text("status = 'reserved'"),
        ),
        # The slots a new booking cannot take whatever the time (taken, withdrawn,
        # busy): few next to the free ones, so a series' later weeks read these
        # instead of every slot (`appointment_types.start_times`).
        Index(
            "ix_slots_provider_id_start_time_not_available",
            "provider_id",
            "start_time",
            postgresql_where=text(rules.slot_not_available()),
            sqlite_where=text(rules.slot_not_available()),
        ),
    )


class SlotRun(Base):
    """A stretch of a provider's slots lying back to back, whatever their status:
    which slot rows exist, in a few rows. Written only by the database's triggers on
    `slots` (migration 0015): an insert adds its new rows' stretches, a delete cuts
    the ones it went through. Stretches may touch (two inserts, each its own); every
    slot row lies in exactly one, and no stretch holds a time without a slot."""

    __tablename__ = "slot_runs"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    starts: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    ends: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("ends > starts", name="ends_after_starts"),)


class ReservationStatus(enum.StrEnum):
    HELD = "held"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# The database's own guarantees against double booking, whatever the application
# does: at most one live reservation per slot (seats of a group session share their
# session's first slot, so they are left out), and one occupant (a reservation or a
# group session) per occupied slot, for appointments of any length. Named objects, so
# code that reads a refusal (`db.violates`) names the very index the table has.
ONE_LIVE_PER_SLOT = Index(
    "uq_reservations_one_live_per_slot",
    "slot_id",
    unique=True,
    postgresql_where=text("status IN ('held', 'confirmed') AND session_id IS NULL"),
    sqlite_where=text("status IN ('held', 'confirmed') AND session_id IS NULL"),
)
# One live reservation per client in a group session (`already_booked`), whatever the
# concurrency. Run-out holds still count until written down as expired: every join
# writes the session's run-out seats down first, or leaves the join to a path that does.
ONE_SEAT_PER_CLIENT = Index(
    "uq_reservations_one_seat_per_client",
    "session_id",
    "client_id",
    unique=True,
    postgresql_where=text("session_id IS NOT NULL AND status IN ('held', 'confirmed')"),
    sqlite_where=text("session_id IS NOT NULL AND status IN ('held', 'confirmed')"),
)
ONE_RESERVATION_PER_SLOT = PrimaryKeyConstraint(
    "slot_id", name="uq_reservation_slots_one_reservation_per_slot"
)


class Reservation(Base):
    __tablename__ = "reservations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("slots.id", ondelete="CASCADE"))
    # Denormalised from the slot so every query can be scoped (and later sharded) by provider.
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clients.id", ondelete="CASCADE"))
    # Null for a plain one-slot reserve. No foreign key: types are only ever marked
    # deleted, so the id keeps naming the rules the appointment was booked under.
    appointment_type_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    # The appointment's own times (slot_id is the slot at `start_time`), so lists
    # filter and sort by appointment time within one client or provider without a join.
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    # What it occupies: the appointment plus its buffers. Kept on the reservation so a
    # reschedule or a move keeps the length and buffers it was booked with.
    occupied_start: Mapped[datetime] = mapped_column(UTCDateTime)
    occupied_end: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Raised by every move, so a calendar invite's SEQUENCE orders the versions.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The recurring series this is an occurrence of (`Series`), or null.
    series_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("series.id", ondelete="CASCADE")
    )
    # An occurrence's start as its series booked it (its RECURRENCE-ID in invites,
    # whatever moves follow); null outside a series.
    series_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How many places it takes: 1, or more in a group session.
    seats: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The group session these seats are in (`GroupSession`), or null: then the
    # reservation occupies its slots itself.
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("group_sessions.id", ondelete="CASCADE")
    )

    __table_args__ = (
        CheckConstraint(
            "status IN ('held', 'confirmed', 'expired', 'cancelled')", name="known_status"
        ),
        CheckConstraint("seats >= 1", name="seats_positive"),
        ONE_LIVE_PER_SLOT,
        ONE_SEAT_PER_CLIENT,
        # The sweeper's search for stale holds.
        Index(
            "ix_reservations_held_expires_at",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
        # A client's live holds, counted by every reserve (the hold limit): exactly its
        # condition, so no plan can walk every live hold to find one client's.
        Index(
            "ix_reservations_client_id_held_expires_at",
            "client_id",
            "expires_at",
            postgresql_where=text("status = 'held'"),
            sqlite_where=text("status = 'held'"),
        ),
        # Keyset listings of one client's / one provider's reservations by appointment time.
        Index("ix_reservations_client_id_start_time_id", "client_id", "start_time", "id"),
        Index("ix_reservations_provider_id_start_time_id", "provider_id", "start_time", "id"),
        # For ON DELETE CASCADE from slots (the partial unique index covers live rows only).
        Index("ix_reservations_slot_id", "slot_id"),
        # A series' occurrences (confirm, cancel, read), and ON DELETE CASCADE from series.
        Index(
            "ix_reservations_series_id_start_time",
            "series_id",
            "start_time",
            postgresql_where=text("series_id IS NOT NULL"),
            sqlite_where=text("series_id IS NOT NULL"),
        ),
        # A group session's seats (join, leave, list).
        Index(
            "ix_reservations_session_id",
            "session_id",
            postgresql_where=text("session_id IS NOT NULL"),
            sqlite_where=text("session_id IS NOT NULL"),
        ),
    )


class GroupSession(Base):
    """One appointment of a group type (`capacity` > 1) that several clients share.

    The session, not its seats, occupies the slots (`ReservationSlot.session_id`)
    from its first live seat until its last one ends. `seats_taken` counts the seats
    of its reservations written down as held or confirmed (run-out holds included
    until they are written down as expired), so it is never below the live seats:
    a seat is taken by one conditional UPDATE of this row, and the CHECK makes the
    database itself refuse more seats than `capacity` (`scheduling.seats`).
    """

    __tablename__ = "group_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    appointment_type_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The slot the session starts at, as its seats' `slot_id`.
    slot_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    occupied_start: Mapped[datetime] = mapped_column(UTCDateTime)
    occupied_end: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    seats_taken: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("capacity BETWEEN 1 AND 500", name="capacity_in_range"),
        CheckConstraint(
            "seats_taken >= 0 AND seats_taken <= capacity", name="seats_within_capacity"
        ),
        # One open session of a type per start: a second opener finds the first.
        Index(
            "uq_group_sessions_open_per_start",
            "provider_id",
            "appointment_type_id",
            "start_time",
            unique=True,
            postgresql_where=text("seats_taken > 0"),
            sqlite_where=text("seats_taken > 0"),
        ),
        # Keyset listing of one provider's sessions by start time.
        Index("ix_group_sessions_provider_id_start_time_id", "provider_id", "start_time", "id"),
    )


class ReservationSlot(Base):
    """One slot occupied by a reservation or by a group session (the appointment's
    slots and its buffers): exactly one of `reservation_id`, `session_id` is set.

    A row exists while its occupant is live, or held and not yet written down as
    expired; ending it deletes its rows. `slot_id` is the key: the database's own
    guarantee against double booking for appointments of any length, two occupants
    can never hold one slot.
    """

    __tablename__ = "reservation_slots"

    slot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("slots.id", ondelete="CASCADE"))
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("reservations.id", ondelete="CASCADE")
    )
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("group_sessions.id", ondelete="CASCADE")
    )
    # Denormalised like everywhere else, so the table can be sharded by provider.
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)

    __table_args__ = (
        ONE_RESERVATION_PER_SLOT,
        CheckConstraint("(reservation_id IS NULL) <> (session_id IS NULL)", name="one_occupant"),
        Index("ix_reservation_slots_reservation_id", "reservation_id"),
        Index(
            "ix_reservation_slots_session_id",
            "session_id",
            postgresql_where=text("session_id IS NOT NULL"),
            sqlite_where=text("session_id IS NOT NULL"),
        ),
    )


class SeriesPolicy(enum.StrEnum):
    ALL = "all"  # every occurrence is held, or none
    AVAILABLE = "available"  # those that pass are held; the others are listed as skipped


class Series(Base):
    """A client's recurring booking: `count` occurrences, every `interval_weeks` weeks,
    each an ordinary reservation (`Reservation.series_id`) at the same wall-clock time
    in the provider's zone. Its holds share one expiry and count as one hold."""

    __tablename__ = "series"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clients.id", ondelete="CASCADE"))
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.id", ondelete="CASCADE")
    )
    appointment_type_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    interval_weeks: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    policy: Mapped[str] = mapped_column(String(16))
    first_start: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("interval_weeks BETWEEN 1 AND 4", name="interval_in_range"),
        CheckConstraint("count BETWEEN 2 AND 52", name="count_in_range"),
        CheckConstraint("policy IN ('all', 'available')", name="known_policy"),
        Index("ix_series_client_id", "client_id"),
        Index("ix_series_provider_id", "provider_id"),
    )
