"""Refusals of the scheduling rules themselves (each domain re-exports what it raises)."""

from datetime import timedelta

from appointments.errors import Conflict, DomainError


class TooLateToBook(DomainError):
    status = 422
    code = "too_late_to_book"


def too_late_to_book(notice: timedelta) -> TooLateToBook:
    """The one refusal of the booking notice, for a plain slot and a typed appointment."""
    hours = notice.total_seconds() / 3600
    return TooLateToBook(
        f"a slot can be reserved only when it starts more than {hours:g} hours from now"
    )


class TooManyHolds(Conflict):
    code = "too_many_holds"


def too_many_holds(limit: int) -> TooManyHolds:
    """The one refusal of the hold limit."""
    return TooManyHolds(
        f"a client may hold at most {limit} slot(s) at once; confirm or let a hold run out first"
    )


class TooFarAhead(DomainError):
    """The start lies beyond the type's `max_advance_days` (the horizon)."""

    status = 422
    code = "too_far_ahead"


def too_far_ahead(max_advance: timedelta) -> TooFarAhead:
    """The one refusal of the horizon."""
    return TooFarAhead(f"this appointment must start within {max_advance.days} days from now")


class DailyLimitReached(Conflict):
    """The provider's day already has `max_per_day` live appointments of the type."""

    code = "daily_limit_reached"


def daily_limit_reached(cap: int) -> DailyLimitReached:
    """The one refusal of the daily cap."""
    return DailyLimitReached(f"this day already has {cap} appointment(s) of this type")


class SessionFull(Conflict):
    """Fewer seats are left than asked; the body says how many (`seats_left`)."""

    code = "session_full"


def session_full(seats_left: int) -> SessionFull:
    """The one refusal of a group session's capacity."""
    word = "seat is" if seats_left == 1 else "seats are"
    return SessionFull(f"only {seats_left} {word} left at this start", seats_left=seats_left)


class AlreadyBooked(Conflict):
    """The client already has a live seat in the session."""

    code = "already_booked"
