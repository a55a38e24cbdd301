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
