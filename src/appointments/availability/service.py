"""Rules for availability: cutting windows into slots, and listing them."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from appointments.availability import repository
from appointments.availability.errors import InvalidWindow
from appointments.availability.models import Slot
from appointments.availability.schemas import SlotFilter
from appointments.pagination import PageRequest
from appointments.providers import service as providers
from appointments.settings import Settings

MAX_WINDOW = timedelta(days=31)


def on_slot_grid(moment: datetime, length: timedelta) -> bool:
    """True when `moment` is a whole multiple of the slot length after the Unix epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo).astimezone(moment.tzinfo)
    return (moment - epoch) % length == timedelta(0)


def slot_starts(start: datetime, end: datetime, length: timedelta) -> list[datetime]:
    """The start times of the slots that tile [start, end), after checking the window."""
    if end <= start:
        raise InvalidWindow("end_time must be after start_time")
    if end - start > MAX_WINDOW:
        raise InvalidWindow(f"a window may span at most {MAX_WINDOW.days} days")
    minutes = int(length.total_seconds() // 60)
    for name, moment in (("start_time", start), ("end_time", end)):
        if not on_slot_grid(moment, length):
            raise InvalidWindow(
                f"{name} {moment.isoformat()} is not on a {minutes}-minute slot boundary"
            )
    count = (end - start) // length
    return [start + i * length for i in range(count)]


async def publish_window(
    session: AsyncSession, settings: Settings, provider_id: str, start: datetime, end: datetime
) -> list[Slot]:
    """Create the slots of a window that the provider does not have yet."""
    provider = await providers.get_provider(session, provider_id)
    length = timedelta(minutes=settings.slot_minutes)
    starts = slot_starts(start, end, length)
    return await repository.insert_missing_slots(session, provider.id, starts, length)


async def list_slots(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    *,
    status: SlotFilter,
    start_from: datetime | None,
    start_before: datetime | None,
    now: datetime,
    request: PageRequest,
) -> Sequence[Slot]:
    provider = await providers.get_provider(session, provider_id)
    return await repository.page(
        session,
        provider.id,
        status=status,
        start_from=start_from,
        start_before=start_before,
        bookable_after=now + timedelta(seconds=settings.min_notice_seconds),
        now=now,
        request=request,
    )
