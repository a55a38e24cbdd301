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
