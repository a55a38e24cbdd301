"""Field types shared by the request and response shapes of several domains."""

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

# Far enough either way for any booking; keeps arithmetic (windows, holds, offsets)
# inside what Python and both databases can represent.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def storable_text(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def utc_in_range(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of range") from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"time must lie between {EARLIEST.year} and {LATEST.year}")
    return value


Name = Annotated[
    str,
    # No control characters (C0, DEL, C1 with NEL) and no line or paragraph separators:
    # they have no place in a name, PostgreSQL refuses NUL, and a name goes into mail
    # headers, where any line break makes the message impossible to build.
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$",
    ),
    AfterValidator(storable_text),
]


def _email_address(value: str) -> str:
    # Syntax only (no DNS). `test_environment` also admits the reserved `.test`
    # domain, which test suites and API fuzzers use for made-up addresses.
    try:
        checked = validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return str(checked.normalized)


EmailAddress = Annotated[
    str,
    Field(max_length=320, json_schema_extra={"format": "email"}, examples=["ada@example.com"]),
    AfterValidator(storable_text),
    AfterValidator(_email_address),
]


# An ISO 8601 date-time starts with its date; pydantic would otherwise read a bare
# number ("0.5", 1700000000) as a Unix timestamp.
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")


def _iso_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2026-12-01T09:00:00Z")
    return value


UtcTime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(utc_in_range),
    Field(examples=["2026-12-01T09:00:00Z"]),
]
"""A time with an offset (a naive one is rejected), converted to UTC."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_text(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date, e.g. 2026-12-01")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
"""A calendar date as YYYY-MM-DD only (pydantic alone reads "0" as 1970-01-01)."""


class RequestBody(BaseModel):
    """Base of every request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ResponseBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)
