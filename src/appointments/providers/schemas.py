import uuid
from datetime import datetime
from functools import lru_cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field

from appointments.schemas import EmailAddress, Name, RequestBody, ResponseBody


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _known_zone(value: str) -> str:
    if value not in _known_zones():
        raise ValueError(f"{value!r} is not an IANA time zone name")
    return value


TimeZoneName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        examples=["Europe/Berlin"],
        # The exact set the service accepts, so the OpenAPI document tells the truth.
        json_schema_extra={"enum": sorted(_known_zones())},
    ),
    AfterValidator(_known_zone),
]


class ProviderIn(RequestBody):
    name: Name
    email: EmailAddress | None = None
    timezone: TimeZoneName = "UTC"


class ProviderOut(ResponseBody):
    id: uuid.UUID
    name: str
    email: str | None
    timezone: str
    created_at: datetime
    updated_at: datetime
