from appointments.errors import Conflict
from appointments.scheduling.errors import AlreadyBooked, SessionFull, TooLateToBook, TooManyHolds

__all__ = ["AlreadyBooked", "SessionFull", "TooLateToBook", "TooManyHolds"]


class SlotUnavailable(Conflict):
    code = "slot_unavailable"


class ReservationExpired(Conflict):
    code = "reservation_expired"


class ReservationNotHeld(Conflict):
    code = "reservation_not_held"


class ReservationCancelled(Conflict):
    code = "reservation_cancelled"


class TooLateToChange(Conflict):
    """A client's cancel or reschedule inside the type's `change_notice_minutes`."""

    code = "too_late_to_change"


class SeriesConflict(Conflict):
    """A series could not be booked as asked; the body lists why (`conflicts`)."""

    code = "series_conflict"
