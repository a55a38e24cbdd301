"""The standing week over HTTP: schedule, date overrides, time off."""

import uuid
from datetime import date, datetime

from pydantic import Field, StrictInt

from appointments.availability.schemas import (
    EndClockTime,
    MovedOut,
    StartClockTime,
    WeeklyRuleIn,
)
from appointments.scheduling.conflicts import ConflictOut
from appointments.schemas import RequestBody, ResponseBody, UtcTime


class ScheduleIn(RequestBody):
    rules: list[WeeklyRuleIn] = Field(
        max_length=100,
        description="Weekly hours, read as wall-clock time in the provider's zone on each "
        "date (an empty list publishes nothing but the dates' overrides).",
    )
    horizon_days: StrictInt = Field(
        default=60,
        ge=1,
        le=730,
        description="Slots are kept published from today to today "
        "+ horizon_days (the provider's local dates).",
    )


class WeeklyRuleOut(ResponseBody):
    weekday: str
    start: str
    end: str


class ScheduleChangeOut(ResponseBody):
    """What a change republished, from now on."""

    created: int = Field(description="Slots the schedule published (or re-opened).")
    removed: int = Field(description="Slots withdrawn, including those of bookings in the way.")
    cancelled: list[ConflictOut] = Field(
        description="Bookings cancelled (`on_conflict=cancel`, or `move` finding no start)."
    )
    moved: list[MovedOut] = Field(description="Bookings moved to a new start (`on_conflict=move`).")


class ScheduleOut(ResponseBody):
    provider_id: uuid.UUID
    rules: list[WeeklyRuleOut]
    horizon_days: int
    timezone: str = Field(description="The provider's IANA zone the hours are read in.")
    published_through: date | None = Field(
        description="The last local date whose slots are published (the roll goes on daily)."
    )
    updated_at: datetime
    change: ScheduleChangeOut | None = Field(
        default=None, description="On a PUT: what it republished."
    )


class IntervalIn(RequestBody):
    start: StartClockTime = Field(examples=["09:00"])
    end: EndClockTime = Field(examples=["12:00"], description="`24:00` means midnight at day end.")


class IntervalOut(ResponseBody):
    start: str
    end: str


class OverrideIn(RequestBody):
    intervals: list[IntervalIn] = Field(
        max_length=48, description="The date's hours instead of its weekday's; none closes it."
    )


class OverrideOut(ResponseBody):
    date: date
    intervals: list[IntervalOut]
    updated_at: datetime
    change: ScheduleChangeOut | None = Field(
        default=None, description="On a PUT: what it republished."
    )


class TimeOffIn(RequestBody):
    start_time: UtcTime
    end_time: UtcTime
    reason: str | None = Field(default=None, max_length=500)


class TimeOffOut(ResponseBody):
    id: uuid.UUID
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    reason: str | None
    created_at: datetime
    change: ScheduleChangeOut | None = Field(
        default=None, description="On a POST: the slots it withdrew."
    )
