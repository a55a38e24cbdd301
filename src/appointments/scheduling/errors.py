"""Refusals of the scheduling rules themselves (each domain re-exports what it raises)."""

from datetime import timedelta

from appointments.errors import DomainError


class TooLateToBook(DomainError):
    status = 422
    code = "too_late_to_book"


def too_late_to_book(notice: timedelta) -> TooLateToBook:
    """The one refusal of the booking notice, for a plain slot and a typed appointment."""
    hours = notice.total_seconds() / 3600
    return TooLateToBook(
        f"a slot can be reserved only when it starts more than {hours:g} hours from now"
    )
