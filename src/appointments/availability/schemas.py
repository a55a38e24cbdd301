import enum
import uuid
from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import Field

from appointments.scheduling import rules
from appointments.scheduling.conflicts import ConflictOut
from appointments.scheduling.models import SlotRecord
from appointments.schemas import IsoDate, RequestBody, ResponseBody, UtcTime


class WindowIn(RequestBody):
    start_time: UtcTime
    end_time: UtcTime


class SlotState(enum.StrEnum):
    """What answers say of a slot (removed slots are never shown)."""

    AVAILABLE = "available"
    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    # Free, but the provider's other calendar is busy then: not bookable.
    BUSY = "busy"


class SlotOut(ResponseBody):
    id: uuid.UUID
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: SlotState

    @classmethod
    def at(cls, slot: SlotRecord, now: datetime) -> "SlotOut":
        """The slot as the world sees it at `now`: a run-out hold reads as available."""
        # Values come typed from the database: skip re-validating thousands of them.
        return cls.model_construct(
            id=slot.id,
            provider_id=slot.provider_id,
            start_time=slot.start_time,
            end_time=slot.end_time,
            status=effective_status(slot, now),
        )


class WindowOut(ResponseBody):
    start_time: datetime
    end_time: datetime
    slots: list[SlotOut] = Field(description="The slots this request created, by start time.")


class WindowsIn(RequestBody):
    windows: list[WindowIn] = Field(
        max_length=500,
        description="The availability the range should have afterwards (may be empty).",
    )


class MovedOut(ResponseBody):
    """A booking that `on_conflict=move` moved to another start."""

    reservation_id: uuid.UUID
    from_start_time: datetime
    to_start_time: datetime


class AvailabilityChangeOut(ResponseBody):
    created: list[SlotOut] = Field(description="Slots created (or re-opened) by the change.")
    removed: int = Field(description="Slots withdrawn, including those of bookings in the way.")
    cancelled: list[ConflictOut] = Field(
        description="Bookings cancelled (`on_conflict=cancel`, or `move` finding no start)."
    )
    moved: list[MovedOut] = Field(
        default_factory=list, description="Bookings moved to a new start (`on_conflict=move`)."
    )


# HH:MM on a 24-hour clock; an end may also be 24:00, midnight at the end of the day.
StartClockTime = Annotated[
    str, Field(min_length=5, max_length=5, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
]
EndClockTime = Annotated[
    str, Field(min_length=5, max_length=5, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
]


class WeeklyRuleIn(RequestBody):
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: StartClockTime = Field(examples=["09:00"])
    end: EndClockTime = Field(examples=["17:00"], description="`24:00` means midnight at day end.")

    def parsed(self) -> tuple[str, time, time | None]:
        """(weekday, start, end); end None means midnight at the end of the day."""
        end = None if self.end == "24:00" else time.fromisoformat(self.end)
        return self.weekday, time.fromisoformat(self.start), end


class WeeklyIn(RequestBody):
    start_date: IsoDate = Field(description="First day, in the provider's time zone.")
    end_date: IsoDate = Field(description="Last day (inclusive), in the provider's time zone.")
    rules: list[WeeklyRuleIn] = Field(min_length=1, max_length=100)


class WeeklyOut(ResponseBody):
    start_date: date
    end_date: date
    timezone: str = Field(description="The provider's IANA time zone the rules were read in.")
    slots: list[SlotOut] = Field(description="The slots this request created, by start time.")


class SlotFilter(enum.StrEnum):
    """`available` means bookable: free now and starting later than now + minimum notice."""

    AVAILABLE = "available"
    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    ALL = "all"


def effective_status(slot: SlotRecord, now: datetime) -> SlotState:
    """`scheduling.rules.slot_shown_status`, for a slot in hand."""
    free = rules.slot_is_free(slot.status, slot.hold_expires_at, now)
    if free and slot.busy:
        return SlotState.BUSY
    if rules.slot_hold_has_run_out(slot.status, slot.hold_expires_at, now):
        return SlotState.AVAILABLE
    return SlotState(slot.status)
