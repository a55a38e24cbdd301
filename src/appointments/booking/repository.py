"""Queries on reservations. Lock order everywhere: reservation rows first, then slot rows."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.booking.models import LIVE_STATUSES, Reservation, ReservationStatus

# Any fixed 64-bit number: the key of PostgreSQL's advisory lock for sweeping.
_SWEEP_LOCK_KEY = 0x6170706F696E74


async def get_of_client(
    session: AsyncSession, reservation_id: uuid.UUID, client_id: uuid.UUID
) -> Reservation | None:
    query = select(Reservation).where(
        Reservation.id == reservation_id, Reservation.client_id == client_id
    )
    return (await session.scalars(query)).one_or_none()


async def count_live_holds(session: AsyncSession, client_id: uuid.UUID, now: datetime) -> int:
    """Holds of the client that have not run out (confirmed bookings do not count)."""
    query = select(func.count()).where(
        Reservation.client_id == client_id,
        Reservation.status == ReservationStatus.HELD,
        Reservation.expires_at > now,
    )
    return int((await session.scalar(query)) or 0)


async def expire_stale_hold_of_slot(
    session: AsyncSession, slot_id: uuid.UUID, now: datetime
) -> None:
    """Write down that the slot's hold ran out, so a new live reservation may take its place."""
    await session.execute(
        update(Reservation)
        .where(
            Reservation.slot_id == slot_id,
            Reservation.status == ReservationStatus.HELD,
            Reservation.expires_at <= now,
        )
        .values(status=ReservationStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )


async def confirm_if_live(
    session: AsyncSession, reservation_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> Reservation | None:
    """Confirm the client's hold if, and only if, it is still held and not run out."""
    result = await session.scalars(
        update(Reservation)
        .where(
            Reservation.id == reservation_id,
            Reservation.client_id == client_id,
            Reservation.status == ReservationStatus.HELD,
            Reservation.expires_at > now,
        )
        .values(status=ReservationStatus.CONFIRMED, confirmed_at=now)
        .returning(Reservation)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none()


async def cancel_live_of_client(
    session: AsyncSession, client_id: uuid.UUID, now: datetime
) -> Sequence[uuid.UUID]:
    """End every live reservation of the client; return the slots they occupied."""
    result = await session.scalars(
        update(Reservation)
        .where(Reservation.client_id == client_id, Reservation.status.in_(LIVE_STATUSES))
        .values(status=ReservationStatus.CANCELLED, cancelled_at=now)
        .returning(Reservation.slot_id)
        .execution_options(synchronize_session=False)
    )
    return result.all()


async def lock_sweep(session: AsyncSession) -> None:
    """Serialise sweeps across processes on PostgreSQL.

    Two sweeps updating the same rows in different orders could deadlock; SQLite
    needs nothing since its writers are serialised by BEGIN IMMEDIATE.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SWEEP_LOCK_KEY})


async def expire_stale_holds(session: AsyncSession, now: datetime) -> int:
    """Mark every run-out hold expired in one set-based UPDATE; return how many."""
    result = await session.execute(
        update(Reservation)
        .where(Reservation.status == ReservationStatus.HELD, Reservation.expires_at <= now)
        .values(status=ReservationStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
