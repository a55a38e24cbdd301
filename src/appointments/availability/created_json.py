"""The answers to publishing availability, serialised in one pydantic-core call.

A 31-day window creates 2,976 slots; building a `SlotOut` model for each and
dumping the tree cost half of that request. These TypedDicts mirror `WindowOut`
and `WeeklyOut` field for field, so pydantic-core writes the very same JSON
(same UUID and datetime formats) from plain dicts. `WindowOut` / `WeeklyOut`
remain the documented response models.
"""

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from appointments.scheduling.models import SlotRecord


class _Slot(TypedDict):
    id: uuid.UUID
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: str


class _Window(TypedDict):
    start_time: datetime
    end_time: datetime
    slots: list[_Slot]


class _Weekly(TypedDict):
    start_date: date
    end_date: date
    timezone: str
    slots: list[_Slot]


_WINDOW = TypeAdapter(_Window)
_WEEKLY = TypeAdapter(_Weekly)


def _slots(created: Sequence[SlotRecord]) -> list[_Slot]:
    # Every slot a publish returns was just inserted or revived as `available`, so its
    # stored status is its effective one, unless the provider's busy time covers it.
    return [
        {
            "id": slot.id,
            "provider_id": slot.provider_id,
            "start_time": slot.start_time,
            "end_time": slot.end_time,
            "status": "busy" if slot.busy else slot.status,
        }
        for slot in created
    ]


def window_json(start: datetime, end: datetime, created: Sequence[SlotRecord]) -> bytes:
    return _WINDOW.dump_json({"start_time": start, "end_time": end, "slots": _slots(created)})


def weekly_json(start: date, end: date, timezone: str, created: Sequence[SlotRecord]) -> bytes:
    return _WEEKLY.dump_json(
        {"start_date": start, "end_date": end, "timezone": timezone, "slots": _slots(created)}
    )
