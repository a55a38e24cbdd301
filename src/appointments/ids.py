"""Ids are opaque strings to callers; one that is not a UUID simply names nothing."""

import uuid

from appointments.errors import NotFound


def parse_id(value: str, what: str) -> uuid.UUID:
    """The UUID in `value`, or NotFound: an id that cannot exist is an unknown id (404)."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"{what} {value!r} does not exist") from None
