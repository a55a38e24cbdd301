from appointments.errors import Conflict, DomainError


class SlotUnavailable(Conflict):
    code = "slot_unavailable"


class TooLateToBook(DomainError):
    status = 422
    code = "too_late_to_book"


class ReservationExpired(Conflict):
    code = "reservation_expired"


class ReservationNotHeld(Conflict):
    code = "reservation_not_held"


class TooManyHolds(Conflict):
    code = "too_many_holds"


class ReservationCancelled(Conflict):
    code = "reservation_cancelled"


class TooLateToChange(Conflict):
    """A client's cancel or reschedule inside the type's `change_notice_minutes`."""

    code = "too_late_to_change"
