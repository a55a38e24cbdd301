from appointments.errors import Conflict
from appointments.scheduling.errors import TooLateToBook, TooManyHolds

__all__ = ["TooLateToBook", "TooManyHolds"]


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
