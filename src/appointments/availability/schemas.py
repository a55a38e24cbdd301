import enum
import uuid
from datetime import datetime

from pydantic import Field

from appointments.availability.models import Slot, SlotStatus
from appointments.schemas import RequestBody, ResponseBody, UtcTime


class WindowIn(RequestBody):
    start_time: UtcTime
    end_time: UtcTime


class SlotOut(ResponseBody):
    id: uuid.UUID
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: SlotStatus

    @classmethod
    def at(cls, slot: Slot, now: datetime) -> "SlotOut":
        """The slot as the world sees it at `now`: a run-out hold reads as available."""
        return cls(
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


class SlotFilter(enum.StrEnum):
    """`available` means bookable: free now and starting later than now + minimum notice."""

    AVAILABLE = "available"
    RESERVED = "reserved"
    CONFIRMED = "confirmed"
    ALL = "all"


def effective_status(slot: Slot, now: datetime) -> SlotStatus:
    if (
        slot.status == SlotStatus.RESERVED
        and slot.hold_expires_at is not None
        and slot.hold_expires_at <= now
    ):
        return SlotStatus.AVAILABLE
    return SlotStatus(slot.status)
