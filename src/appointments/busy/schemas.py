import uuid
from datetime import datetime

from pydantic import Field, StrictBool

from appointments.busy.models import CalendarKind, CalendarStatus
from appointments.schemas import RequestBody, ResponseBody


class CalendarIn(RequestBody):
    kind: CalendarKind = Field(
        description="`ics`: an iCal address (Google's or Outlook's secret address, any "
        "published .ics); `caldav`: a CalDAV calendar collection (its URL, as the "
        "calendar app shows it)."
    )
    url: str = Field(min_length=8, max_length=2048, examples=["https://example.com/cal.ics"])
    username: str | None = Field(default=None, max_length=200)
    password: str | None = Field(
        default=None,
        max_length=500,
        description="Kept encrypted (APPOINTMENTS_SECRETS_KEY), never shown again; left "
        "out on a PUT, the stored one stays.",
    )
    write_bookings: StrictBool = Field(
        default=False, description="Write each confirmed booking to the calendar (CalDAV only)."
    )


class CalendarOut(ResponseBody):
    id: uuid.UUID
    provider_id: uuid.UUID
    kind: CalendarKind
    url: str
    username: str | None
    write_bookings: bool
    status: CalendarStatus = Field(
        description="`pending` until first read; `error` while it cannot be read (its last "
        "busy time stands)."
    )
    last_synced_at: datetime | None = Field(description="The last read that succeeded.")
    last_error: str | None
    busy_count: int = Field(description="Busy intervals last read, from now on.")
    created_at: datetime
    updated_at: datetime
