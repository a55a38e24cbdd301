"""Ids are opaque strings to callers; one that is not a UUID simply names nothing."""

import functools
import uuid

from appointments.errors import NotFound


@functools.lru_cache(maxsize=4096)
def _uuid(value: str) -> uuid.UUID:
    # UUIDs are immutable, and the same few ids (a provider, its types) are in most
    # requests' paths: parsing one costs about as much as its cache lookup ten times.
    return uuid.UUID(value)


def parse_id(value: str, what: str) -> uuid.UUID:
    """The UUID in `value`, or NotFound: an id that cannot exist is an unknown id (404)."""
    try:
        return _uuid(value)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"{what} {value!r} does not exist") from None
