"""The refusal of a change that would strand bookings, and how each stranded booking
is listed: availability edits and provider deletion both answer with it."""

import uuid
from datetime import datetime
from typing import Literal

from appointments.errors import Conflict
from appointments.scheduling.models import Reservation, ReservationStatus
from appointments.schemas import ResponseBody


class AvailabilityConflict(Conflict):
    """A change would drop held or confirmed bookings; the body lists them (`conflicts`)."""

    code = "availability_conflict"


class ConflictOut(ResponseBody):
    """A held or confirmed booking that a change of availability would drop."""

    reservation_id: uuid.UUID
    client_id: uuid.UUID
    slot_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: Literal["held", "confirmed"]


def conflict_of(reservation: Reservation, now: datetime) -> ConflictOut:
    """A live reservation (as every caller selects them) as a listed conflict."""
    return ConflictOut(
        reservation_id=reservation.id,
        client_id=reservation.client_id,
        slot_id=reservation.slot_id,
        start_time=reservation.start_time,
        end_time=reservation.end_time,
        status="confirmed" if reservation.status == ReservationStatus.CONFIRMED else "held",
    )
