from appointments.errors import Conflict
from appointments.scheduling.errors import DailyLimitReached, TooFarAhead

__all__ = ["DailyLimitReached", "TooFarAhead"]


class CapacityBelowBooked(Conflict):
    """A type's new capacity is below the seats taken in one of its live future sessions
    (listed in the body's `sessions`)."""

    code = "capacity_below_booked"
