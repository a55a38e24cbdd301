import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictInt

from appointments.schemas import Name, RequestBody, ResponseBody

# Upper bounds keep every computed time, and every value, inside what both databases
# store (a 32-bit integer column); ten years of notice is more than any rule needs.
MAX_NOTICE_MINUTES = 10 * 366 * 24 * 60
MAX_DAILY_CAP = 2**31 - 1


class AppointmentTypeIn(RequestBody):
    name: Name = Field(examples=["Consultation"])
    duration_minutes: Annotated[StrictInt, Field(ge=15, le=480, examples=[45])] = Field(
        description="How long an appointment lasts: a multiple of the slot length, 15 to 480."
    )
    buffer_before_minutes: Annotated[StrictInt, Field(ge=0, le=240)] = Field(
        default=0, description="Time kept free before each appointment (slot multiples)."
    )
    buffer_after_minutes: Annotated[StrictInt, Field(ge=0, le=240)] = Field(
        default=0,
        examples=[15],
        description="Time kept free after each appointment (slot multiples).",
    )
    min_notice_minutes: Annotated[StrictInt, Field(ge=0, le=MAX_NOTICE_MINUTES)] | None = Field(
        default=None,
        description="How far ahead an appointment must start; null is the service's minimum "
        "notice, and less than that is refused.",
    )
    max_advance_days: Annotated[StrictInt, Field(ge=1, le=730)] | None = Field(
        default=None, description="An appointment must start within this many days; null: no limit."
    )
    max_per_day: Annotated[StrictInt, Field(ge=1, le=MAX_DAILY_CAP)] | None = Field(
        default=None,
        description="Live appointments of this type per calendar day in the provider's time "
        "zone; null: no limit.",
    )
    change_notice_minutes: Annotated[StrictInt, Field(ge=0, le=MAX_NOTICE_MINUTES)] = Field(
        default=0,
        description="A client may cancel or reschedule only while the appointment starts more "
        "than this far ahead (providers and admins are not bound by it).",
    )
    capacity: Annotated[StrictInt, Field(ge=1, le=500)] = Field(
        default=1,
        description="Clients who share one appointment. More than 1 makes it a group type: "
        "reserves take seats in sessions. Lowering it below the seats taken in a live "
        "future session: 409 `capacity_below_booked`.",
    )


class AppointmentTypeOut(ResponseBody):
    id: uuid.UUID
    provider_id: uuid.UUID
    name: str
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int | None
    max_advance_days: int | None
    max_per_day: int | None
    change_notice_minutes: int
    capacity: int
    created_at: datetime
    updated_at: datetime


class StartTimeOut(ResponseBody):
    """A time at which an appointment of the type can be booked."""

    slot_id: uuid.UUID = Field(description="The slot that begins at `start_time`; reserve it.")
    start_time: datetime
    end_time: datetime = Field(description="start_time + duration (buffers not included).")
    seats_left: int = Field(
        description="Seats a reserve can still take at this start: the type's capacity (1 "
        "for a type that is not a group type) where no session has begun, else what the "
        "live session there has left."
    )
