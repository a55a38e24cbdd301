from appointments.errors import Conflict, ValidationFailed


class InvalidWindow(ValidationFailed):
    """A window off the slot grid, empty or reversed, or longer than allowed (422)."""

    code = "invalid_window"


class AvailabilityConflict(Conflict):
    """A change would drop held or confirmed bookings; the body lists them (`conflicts`)."""

    code = "availability_conflict"
