"""Cancel: one reservation at its owner's request, or the bookings an edit strands."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from appointments.booking import repository, terms
from appointments.booking.errors import (
    ReservationExpired,
)
from appointments.booking.repository import Owner
from appointments.errors import NotFound
from appointments.ids import parse_id
from appointments.scheduling import holds, outbox, slots
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    Reservation,
    ReservationStatus,
)
from appointments.settings import Settings


async def cancel_reservation(
    session: AsyncSession,
    settings: Settings,
    owner: Owner,
    reservation_id: str,
    now: datetime,
    *,
    remove_slot: bool = False,
    by_client: bool = False,
) -> Reservation:
    """Cancel a held or confirmed reservation; its slots are freed (or withdrawn).

    Cancelling a cancelled reservation returns it unchanged. Someone else's
    reservation is reported exactly like a missing one. A client is bound by the
    type's `change_notice_minutes`; providers and admins are not.
    """
    reservation_uuid = parse_id(reservation_id, "reservation")
    if by_client:
        current = await repository.get_owned(session, owner, reservation_uuid)
        if current is not None and terms.is_live(current, now):
            rules = await terms.rules_of(session, settings, current)
            terms.check_change_notice(current, rules, now)
    cancelled = await repository.cancel_if_live(session, owner, reservation_uuid, now)
    if cancelled is not None:
        freed = await holds.unlink(session, [cancelled.id])
        await slots.release(session, freed, remove=remove_slot)
        await outbox.record(session, EventType.CANCELLED, [cancelled.id], now)
        return cancelled
    reservation = await repository.get_owned(session, owner, reservation_uuid)
    if reservation is None:
        raise NotFound(f"reservation {reservation_id!r} does not exist")
    if reservation.status == ReservationStatus.CANCELLED:
        return reservation
    raise ReservationExpired("the hold ran out; there is nothing to cancel")


async def cancel_conflicts(
    session: AsyncSession, conflicts: Sequence[Reservation], now: datetime
) -> Sequence[Reservation]:
    """Cancel these reservations, in the caller's transaction; their slots become
    available again, except those the caller has already withdrawn."""
    cancelled = await holds.cancel_many(session, [r.id for r in conflicts], now)
    freed = await holds.unlink(session, [r.id for r in cancelled])
    await slots.release(session, freed)
    await outbox.record(session, EventType.CANCELLED, [r.id for r in cancelled], now)
    return cancelled
