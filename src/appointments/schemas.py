"""Field types shared by the request and response shapes of several domains."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

# Far enough either way for any booking; keeps arithmetic (windows, holds, offsets)
# inside what Python and both databases can represent.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _storable_text(value: str) -> str:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("control characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def _utc_in_range(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of range") from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"time must lie between {EARLIEST.year} and {LATEST.year}")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_storable_text),
]

UtcTime = Annotated[
    AwareDatetime,
    AfterValidator(_utc_in_range),
    Field(examples=["2026-12-01T09:00:00Z"]),
]
"""A time with an offset (a naive one is rejected), converted to UTC."""


class RequestBody(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ResponseBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)
