from appointments.errors import ValidationFailed


class CalendarNotAllowed(ValidationFailed):
    """A calendar this service cannot take as sent: its address, its kind or options,
    or a password with no key to keep it."""

    code = "calendar_not_allowed"
