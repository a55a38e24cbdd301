"""The terms a reservation was booked on, and whether it may still be changed."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types import repository as appointment_types
from appointments.appointment_types.rules import BookingRules
from appointments.booking.errors import (
    ReservationCancelled,
    ReservationExpired,
    TooLateToChange,
)
from appointments.scheduling import rules as core
from appointments.scheduling.models import (
    Reservation,
    ReservationStatus,
)
from appointments.settings import Settings


async def rules_of(
    session: AsyncSession, settings: Settings, reservation: Reservation
) -> BookingRules:
    """The terms the reservation was booked under (its type's, even when the type has
    been deleted since), with the length and buffers it was booked with."""
    rules = BookingRules.plain(settings)
    if reservation.appointment_type_id is not None:
        kind = await appointment_types.get(
            session, reservation.provider_id, reservation.appointment_type_id, include_deleted=True
        )
        if kind is not None:
            rules = BookingRules.of(kind, settings)
    return rules.with_length_of(
        reservation.start_time,
        reservation.end_time,
        reservation.occupied_start,
        reservation.occupied_end,
    )


def is_live(reservation: Reservation, now: datetime) -> bool:
    return core.reservation_is_live(reservation.status, reservation.expires_at, now)


def check_change_notice(reservation: Reservation, rules: BookingRules, now: datetime) -> None:
    """A client's cancel or move: refused once the appointment has started (whatever
    its type says: moving a past booking into the future would be a free new one),
    and inside its type's `change_notice_minutes`."""
    if reservation.start_time <= now:
        raise TooLateToChange("this appointment has already started; ask the provider")
    if rules.change_notice is not None and reservation.start_time <= now + rules.change_notice:
        minutes = rules.change_notice.total_seconds() / 60
        raise TooLateToChange(
            f"this appointment can be changed by the client only while it starts more than "
            f"{minutes:g} minutes from now; ask the provider"
        )


def check_movable(
    reservation: Reservation, rules: BookingRules, now: datetime, *, by_client: bool
) -> None:
    if reservation.status == ReservationStatus.CANCELLED:
        raise ReservationCancelled("the reservation is cancelled; reserve a new slot instead")
    if not is_live(reservation, now):
        raise ReservationExpired("the hold ran out; reserve the slot again")
    if by_client:
        check_change_notice(reservation, rules, now)
