"""Rules for availability: cutting windows into slots, and listing them."""

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from appointments.availability import repository, weekly
from appointments.availability.errors import InvalidWindow
from appointments.booking import cancel, reschedule
from appointments.db import RowLock
from appointments.providers import service as providers
from appointments.providers.models import Provider
from appointments.scheduling import holds, slots
from appointments.scheduling.conflicts import AvailabilityConflict, conflict_of
from appointments.scheduling.models import Reservation, SlotRecord
from appointments.schemas import EARLIEST, LATEST
from appointments.settings import Settings

MAX_WINDOW = timedelta(days=31)
MAX_WEEKLY_DAYS = 366
# The days whose every hour, in every zone, lies inside the storable time range.
EARLIEST_DAY = EARLIEST.date() + timedelta(days=1)
LATEST_DAY = LATEST.date() - timedelta(days=2)


class OnConflict(enum.StrEnum):
    """What an edit does with held or confirmed bookings on slots it withdraws."""

    REFUSE = "refuse"
    CANCEL = "cancel"
    MOVE = "move"


@dataclass(frozen=True)
class AvailabilityChange:
    created: list[SlotRecord]
    removed: int
    cancelled: Sequence[Reservation]
    moved: Sequence[reschedule.Move] = ()


def on_slot_grid(moment: datetime, length: timedelta) -> bool:
    """True when `moment` is a whole multiple of the slot length after the Unix epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo).astimezone(moment.tzinfo)
    return (moment - epoch) % length == timedelta(0)


def check_window(start: datetime, end: datetime, length: timedelta) -> None:
    """Refuse a window that is empty or reversed, too long, or off the slot grid."""
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


def slot_starts(start: datetime, end: datetime, length: timedelta) -> list[datetime]:
    """The start times of the slots that tile [start, end), after checking the window."""
    check_window(start, end, length)
    count = (end - start) // length
    return [start + i * length for i in range(count)]


def union(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The intervals merged where they overlap or touch, by start. Cutting the union
    into slots costs what the answer holds, however many windows repeat each other
    (500 copies of one 31-day window are 2,976 slots, not 1.5 million)."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


async def publish_window(
    session: AsyncSession, settings: Settings, provider_id: str, start: datetime, end: datetime
) -> list[SlotRecord]:
    """Create the slots of a window that the provider does not have yet."""
    provider = await providers.get_provider(session, provider_id, lock=RowLock.KEEP)
    length = timedelta(minutes=settings.slot_minutes)
    starts = slot_starts(start, end, length)
    created = await repository.insert_missing_slots(session, provider.id, starts, length)
    await repository.adopt_slots(session, provider.id, starts)
    return created


def _check_range(start_from: datetime, start_before: datetime, length: timedelta) -> None:
    check_window(start_from, start_before, length)  # same rules as a published window


async def replace_range(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    start_from: datetime,
    start_before: datetime,
    windows: Sequence[tuple[datetime, datetime]],
    now: datetime,
    *,
    on_conflict: OnConflict,
) -> AvailabilityChange:
    """Make the provider's slots in [start_from, start_before) exactly the given windows.

    Free slots outside the windows are withdrawn and missing ones created. Held or
    confirmed bookings on slots being withdrawn are never dropped silently: the
    change is refused (409, listing them), or they are cancelled, or moved to the
    earliest free start at or after their own within 14 days (cancelled when there
    is none), all in the same transaction. The provider row is locked, so edits of
    one provider's availability run one at a time.
    """
    provider = await providers.get_provider(session, provider_id, lock=RowLock.EDIT)
    length = timedelta(minutes=settings.slot_minutes)
    _check_range(start_from, start_before, length)
    for start, end in windows:
        check_window(start, end, length)
        if start < start_from or end > start_before:
            raise InvalidWindow("every window must lie inside the range from `from` to `to`")
    wanted: set[datetime] = set()
    for start, end in union(windows):
        wanted.update(start + i * length for i in range((end - start) // length))

    withdrawn = slots.Withdrawn(provider.id, start_from, start_before, keep_starts=wanted)
    removed, conflicts = await withdraw(session, [withdrawn], now, on_conflict)
    created = await repository.insert_missing_slots(session, provider.id, sorted(wanted), length)
    await repository.adopt_slots(session, provider.id, sorted(wanted))
    cancelled, moved = await settle(session, settings, conflicts, now, on_conflict)
    return AvailabilityChange(created=created, removed=removed, cancelled=cancelled, moved=moved)


async def withdraw(
    session: AsyncSession,
    withdrawals: Sequence[slots.Withdrawn],
    now: datetime,
    on_conflict: OnConflict,
) -> tuple[int, list[Reservation]]:
    """Withdraw the slots picked (the caller holds the provider's row lock): how many
    went, and the live bookings that were on them (`settle` them next). Refused (409,
    listing them, nothing changed once the transaction rolls back) when there are
    some and `on_conflict` is `refuse`."""
    # Lock order everywhere: reservation rows, then slot rows (booking/repository.py).
    # Run-out holds on the slots going are written down as expired, and the live
    # bookings on them locked, before any slot is touched. Then the free slots go: a
    # reserve racing with us claimed its slot first (then its booking is locked by the
    # second look, taken after it committed) or finds the slot gone.
    for withdrawn in withdrawals:
        await holds.expire_run_out_on_withdrawn_slots(session, withdrawn, now)
        await holds.live_on_withdrawn_slots(session, withdrawn, now)
    removed = 0
    for withdrawn in withdrawals:
        removed += await repository.remove_slots(session, withdrawn, now)
    conflicts: list[Reservation] = []
    for withdrawn in withdrawals:
        conflicts += await holds.live_on_withdrawn_slots(session, withdrawn, now)
    if conflicts and on_conflict is OnConflict.REFUSE:
        raise AvailabilityConflict(
            f"{len(conflicts)} held or confirmed booking(s) would be dropped; pass "
            "on_conflict=cancel or on_conflict=move, or cancel them first",
            conflicts=[conflict_of(r, now) for r in conflicts],
        )
    if conflicts:
        # Their slots go now, so no booking can be moved onto them.
        for withdrawn in withdrawals:
            removed += await repository.remove_slots(session, withdrawn, now, only_free=False)
    return removed, conflicts


async def settle(
    session: AsyncSession,
    settings: Settings,
    conflicts: Sequence[Reservation],
    now: datetime,
    on_conflict: OnConflict,
) -> tuple[Sequence[Reservation], Sequence[reschedule.Move]]:
    """The bookings an edit withdrew the slots of: moved to the earliest free start at
    or after their own within 14 days (cancelled when there is none), or cancelled;
    each client told. Returns (cancelled, moved)."""
    if on_conflict is OnConflict.MOVE:
        moved, gave_up = await reschedule.move_elsewhere(session, settings, conflicts, now)
        return gave_up, moved
    return await cancel.cancel_conflicts(session, conflicts, now), ()


async def publish_weekly(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    rules: Sequence[tuple[str, time, time | None]],
    start_date: date,
    end_date: date,
) -> tuple[Provider, list[SlotRecord]]:
    """Create the slots of weekly rules, read in the provider's own time zone."""
    provider = await providers.get_provider(session, provider_id, lock=RowLock.KEEP)
    if end_date < start_date:
        raise InvalidWindow("end_date must not be before start_date")
    if start_date < EARLIEST_DAY or end_date > LATEST_DAY:
        # Read in any time zone, days at the ends of the calendar overflow.
        raise InvalidWindow(
            f"dates must lie between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"
        )
    if (end_date - start_date).days >= MAX_WEEKLY_DAYS:
        raise InvalidWindow(f"weekly rules may cover at most {MAX_WEEKLY_DAYS} days at once")
    length = timedelta(minutes=settings.slot_minutes)
    for _, start, end in rules:
        # Whether a wall time is a slot boundary depends on the date's UTC offset:
        # checked on each date it falls on (`check_on_local_grid`).
        if end is not None and end <= start:
            raise InvalidWindow("a rule's end must be after its start (use 24:00 for midnight)")
    zone = ZoneInfo(provider.timezone)
    days = list(weekly.expand(rules, start_date, end_date, zone))
    for begins, ends in days:
        for moment in (begins, ends):
            check_on_local_grid(moment, length, zone)
    starts: list[datetime] = []
    for begins, ends in union(days):
        starts.extend(grid_starts(begins, ends, length))
    created = await repository.insert_missing_slots(session, provider.id, starts, length)
    await repository.adopt_slots(session, provider.id, starts)
    return provider, created


def check_on_local_grid(moment: datetime, length: timedelta, zone: ZoneInfo) -> None:
    """Refuse a rule's start or end that is no slot boundary on that date (slots align
    to the epoch in UTC): with slots longer than 15 minutes, a zone whose offset is not
    a multiple of them (Asia/Kolkata, 60 minutes) would otherwise lose part of an hour
    or start at :30. The message names the nearest boundaries in the provider's zone."""
    if on_slot_grid(moment, length):
        return
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    below = epoch + ((moment - epoch) // length) * length
    local, earlier, later = (m.astimezone(zone) for m in (moment, below, below + length))
    minutes = int(length.total_seconds() // 60)
    raise InvalidWindow(
        f"{local:%H:%M} on {local.date().isoformat()} in {zone.key} is not on the "
        f"{minutes}-minute slot grid (slots align in UTC); the nearest slot boundaries "
        f"are {earlier:%H:%M} and {later:%H:%M}"
    )


def grid_starts(begins: datetime, ends: datetime, length: timedelta) -> list[datetime]:
    """Slot starts inside [begins, ends) on the epoch-aligned grid."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + -((epoch - begins) // length) * length  # round up onto the grid
    count = max(0, (ends - first) // length)
    return [first + i * length for i in range(count)]
