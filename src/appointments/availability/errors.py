from appointments.errors import ValidationFailed


class InvalidWindow(ValidationFailed):
    """A window off the slot grid, empty or reversed, or longer than allowed (422)."""

    code = "invalid_window"
