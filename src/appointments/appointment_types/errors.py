from appointments.errors import Conflict, DomainError


class TooFarAhead(DomainError):
    """The start lies beyond the type's `max_advance_days`."""

    status = 422
    code = "too_far_ahead"


class DailyLimitReached(Conflict):
    """The provider's day already has `max_per_day` live appointments of the type."""

    code = "daily_limit_reached"
