"""The standing week: weekly hours with date overrides, less time off, kept published
from the provider's today to today + `horizon_days` (in the provider's zone).

What the schedule wants is computed in Python from its few rows (a 730-day horizon of
9-to-5 weekdays is ~23,000 starts) and compared with the slots it published before:
the ones it no longer wants are withdrawn by the path every availability edit takes
(`service.withdraw`, `on_conflict`), the missing ones inserted set-based and
idempotently (`repository.insert_missing_slots`: ON CONFLICT on the provider's start).
A schedule never touches a slot it did not publish (`Slot.source`): explicitly
published windows stay as they are, and a window published over schedule time makes
those slots the window's (`repository.adopt_slots`).

Every change locks the provider's row first (the lock availability edits take), so a
provider's edits and rolls run one at a time, from any number of processes.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.availability import repository, weekly
from appointments.availability.errors import InvalidWindow
from appointments.availability.schedule_models import Schedule, ScheduleOverride, TimeOff
from appointments.availability.service import (
    EARLIEST_DAY,
    LATEST_DAY,
    OnConflict,
    check_on_local_grid,
    grid_starts,
    settle,
    union,
    withdraw,
)
from appointments.booking import reschedule
from appointments.db import RowLock
from appointments.errors import NotFound
from appointments.ids import parse_id
from appointments.observability.metrics import SCHEDULE_SLOTS
from appointments.pagination import PageRequest
from appointments.providers import service as providers
from appointments.providers.models import Provider
from appointments.scheduling import slots
from appointments.scheduling.models import Reservation, SlotSource
from appointments.settings import Settings

# A rule or an override's interval: (start, end) wall-clock times; end None is 24:00.
Hours = tuple[time, time | None]


@dataclass(frozen=True)
class Change:
    """What a republish did."""

    created: int
    removed: int
    cancelled: Sequence[Reservation] = ()
    moved: Sequence[reschedule.Move] = ()
    # The last date now published; None when it did not publish (no schedule, nothing due).
    published_through: date | None = None


def parse_hours(start: str, end: str) -> Hours:
    """`HH:MM` wall-clock times (end `24:00` is midnight at the day's end)."""
    parsed_end = None if end == "24:00" else time.fromisoformat(end)
    begins = time.fromisoformat(start)
    if parsed_end is not None and parsed_end <= begins:
        raise InvalidWindow("an interval's end must be after its start (use 24:00 for midnight)")
    return begins, parsed_end


def hours_text(hours: Hours) -> dict[str, str]:
    start, end = hours
    return {"start": f"{start:%H:%M}", "end": "24:00" if end is None else f"{end:%H:%M}"}


def last_day(schedule: Schedule, today: date) -> date:
    """The last local date the schedule publishes: today + `horizon_days`."""
    return today + timedelta(days=schedule.horizon_days)


def day_intervals(
    first: date,
    last: date,
    rules: Sequence[tuple[str, Hours]],
    overrides: dict[date, list[Hours]],
    zone: ZoneInfo,
) -> list[tuple[datetime, datetime]]:
    """UTC intervals of every date from `first` to `last`: the date's override when it
    has one (none closes it), else its weekday's rules; read as wall-clock time in
    `zone` (`weekly.wall_time_to_utc`: DST gaps and repeated hours handled)."""
    intervals: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        if day in overrides:
            hours = overrides[day]
        else:
            weekday = weekly.WEEKDAYS[day.weekday()]
            hours = [h for rule_day, h in rules if rule_day == weekday]
        for start, end in hours:
            begins = weekly.wall_time_to_utc(day, start, zone, first=True)
            ends = weekly.wall_time_to_utc(day, end, zone, first=False)
            if ends > begins:
                intervals.append((begins, ends))
        day += timedelta(days=1)
    return intervals


def wanted_starts(
    intervals: Sequence[tuple[datetime, datetime]],
    time_off: Sequence[tuple[datetime, datetime]],
    length: timedelta,
    not_before: datetime,
) -> list[datetime]:
    """Slot starts on the grid inside the intervals, from `not_before` on, leaving out
    every slot that overlaps time off. Sorted."""
    starts = [
        start
        for begins, ends in union(intervals)
        for start in grid_starts(begins, ends, length)
        if start >= not_before
    ]
    away = union(time_off)
    kept: list[datetime] = []
    i = 0
    for start in starts:
        while i < len(away) and away[i][1] <= start:
            i += 1
        if i < len(away) and away[i][0] < start + length:
            continue  # [start, start + length) overlaps this stretch of time off
        kept.append(start)
    return kept


def check_on_grid(
    intervals: Sequence[tuple[datetime, datetime]], length: timedelta, zone: ZoneInfo
) -> None:
    """Refuse hours whose start or end is no slot boundary on some date (the message
    names the nearest ones, `service.check_on_local_grid`)."""
    for begins, ends in intervals:
        for moment in (begins, ends):
            check_on_local_grid(moment, length, zone)


async def _overrides(
    session: AsyncSession, provider_id: uuid.UUID, first: date, last: date
) -> dict[date, list[Hours]]:
    rows = await session.scalars(
        select(ScheduleOverride).where(
            ScheduleOverride.provider_id == provider_id,
            ScheduleOverride.day >= first,
            ScheduleOverride.day <= last,
        )
    )
    return {
        row.day: [parse_hours(h["start"], h["end"]) for h in row.intervals] for row in rows.all()
    }


async def _time_off(
    session: AsyncSession, provider_id: uuid.UUID, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    rows = await session.execute(
        select(TimeOff.start_time, TimeOff.end_time).where(
            TimeOff.provider_id == provider_id,
            TimeOff.start_time < end,
            TimeOff.end_time > start,
        )
    )
    return [(row[0], row[1]) for row in rows.all()]


def _rules(schedule: Schedule) -> list[tuple[str, Hours]]:
    return [(rule["weekday"], parse_hours(rule["start"], rule["end"])) for rule in schedule.rules]


def _today(provider: Provider, now: datetime) -> date:
    return now.astimezone(ZoneInfo(provider.timezone)).date()


async def wanted(
    session: AsyncSession,
    settings: Settings,
    provider: Provider,
    schedule: Schedule,
    first: date,
    last: date,
    now: datetime,
) -> list[datetime]:
    """The starts the schedule wants from local date `first` to `last` (none before `now`)."""
    zone = ZoneInfo(provider.timezone)
    length = timedelta(minutes=settings.slot_minutes)
    intervals = day_intervals(
        first, last, _rules(schedule), await _overrides(session, provider.id, first, last), zone
    )
    if not intervals:
        return []
    reach = (min(b for b, _ in intervals), max(e for _, e in intervals))
    away = await _time_off(session, provider.id, *reach)
    return wanted_starts(intervals, away, length, now)


async def republish(
    session: AsyncSession,
    settings: Settings,
    provider: Provider,
    now: datetime,
    on_conflict: OnConflict,
    dates: tuple[date, date] | None = None,
) -> Change:
    """Make the slots the schedule published from now on exactly what it wants today
    (on the local `dates` only, when given: what an override or a time off changed):
    withdraw the rest (bookings on them follow `on_conflict`), add the missing. The
    caller holds the provider's row lock. Without a schedule nothing changes."""
    schedule = await session.get(Schedule, provider.id, populate_existing=True)
    if schedule is None:
        return Change(created=0, removed=0)
    zone = ZoneInfo(provider.timezone)
    today = _today(provider, now)
    through = last_day(schedule, today)
    first, last = today, through
    if dates is not None:
        first, last = max(today, dates[0]), min(through, dates[1])
    want: list[datetime] = []
    if first <= last:
        want = await wanted(session, settings, provider, schedule, first, last, now)
    # All of the schedule's slots from now on (those past a shortened horizon go too),
    # or those on the dates.
    start_from, start_before = now, None
    if dates is not None:
        start_from = max(now, weekly.wall_time_to_utc(first, time(0), zone, first=True))
        start_before = weekly.wall_time_to_utc(last, None, zone, first=True)
    have = await repository.live_starts_of(
        session, provider.id, SlotSource.SCHEDULE, start_from, start_before
    )
    going = sorted(have.difference(want))
    removed, conflicts = await withdraw(
        session, slots.Withdrawn.at(provider.id, going), now, on_conflict
    )
    new = [start for start in want if start not in have]
    length = timedelta(minutes=settings.slot_minutes)
    created = await repository.insert_missing_slots(
        session, provider.id, new, length, SlotSource.SCHEDULE
    )
    cancelled, moved = await settle(session, settings, conflicts, now, on_conflict)
    if dates is None:
        schedule.published_through = through
    return Change(len(created), removed, cancelled, moved, schedule.published_through)


async def roll(
    session: AsyncSession, settings: Settings, provider: Provider, now: datetime
) -> Change:
    """Publish the days that came within the horizon since the last roll or change
    (the caller holds the provider's row lock). Adds only: what the schedule withdraws
    was withdrawn when it changed. Nothing to do when it is published through today's
    horizon already, so running it again, or from every process, creates nothing."""
    schedule = await session.get(Schedule, provider.id, populate_existing=True)
    if schedule is None:
        return Change(created=0, removed=0)
    today = _today(provider, now)
    through = last_day(schedule, today)
    done = schedule.published_through
    if done is not None and done >= through:
        return Change(created=0, removed=0)  # no `published_through`: nothing was due
    first = today if done is None else max(today, done + timedelta(days=1))
    want = await wanted(session, settings, provider, schedule, first, through, now)
    length = timedelta(minutes=settings.slot_minutes)
    created = await repository.insert_missing_slots(
        session, provider.id, want, length, SlotSource.SCHEDULE
    )
    schedule.published_through = through
    return Change(created=len(created), removed=0, published_through=through)


# --- the edits: each locks the provider's row, changes its rows, republishes ----------


async def _locked(session: AsyncSession, provider_id: str) -> Provider:
    return await providers.get_provider(session, provider_id, lock=RowLock.EDIT)


def _count(change: Change) -> Change:
    SCHEDULE_SLOTS.labels("published", "change").inc(change.created)
    SCHEDULE_SLOTS.labels("removed", "change").inc(change.removed)
    return change


async def get_schedule(session: AsyncSession, provider_id: str) -> tuple[Provider, Schedule]:
    provider = await providers.get_provider(session, provider_id)
    found = await session.get(Schedule, provider.id)
    if found is None:
        raise NotFound(f"provider {provider_id!r} has no schedule")
    return provider, found


async def set_schedule(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    rules: Sequence[tuple[str, Hours]],
    horizon_days: int,
    now: datetime,
    on_conflict: OnConflict,
) -> tuple[Provider, Schedule, Change]:
    """Create or replace the weekly hours and horizon, and republish from now on."""
    provider = await _locked(session, provider_id)
    zone = ZoneInfo(provider.timezone)
    today = _today(provider, now)
    through = today + timedelta(days=horizon_days)
    overrides = await _overrides(session, provider.id, today, through)
    length = timedelta(minutes=settings.slot_minutes)
    check_on_grid(day_intervals(today, through, rules, overrides, zone), length, zone)
    texts = [{"weekday": day, **hours_text(hours)} for day, hours in rules]
    found = await session.get(Schedule, provider.id)
    if found is None:
        found = Schedule(provider_id=provider.id, created_at=now)
        session.add(found)
    found.rules, found.horizon_days, found.updated_at = texts, horizon_days, now
    await session.flush()
    change = _count(await republish(session, settings, provider, now, on_conflict))
    return provider, found, change


async def remove_schedule(session: AsyncSession, provider_id: str) -> None:
    """Stop the schedule; the slots it published stay (withdraw them as any others)."""
    provider = await _locked(session, provider_id)
    found = await session.get(Schedule, provider.id)
    if found is None:
        raise NotFound(f"provider {provider_id!r} has no schedule")
    await session.delete(found)
    await session.flush()


async def set_override(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    day: date,
    hours: Sequence[Hours],
    now: datetime,
    on_conflict: OnConflict,
) -> tuple[ScheduleOverride, Change]:
    """The date's own hours (none closes it), republished when it is within the horizon."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidWindow(
            f"the date must lie between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"
        )
    provider = await _locked(session, provider_id)
    zone = ZoneInfo(provider.timezone)
    length = timedelta(minutes=settings.slot_minutes)
    ordered = sorted(hours, key=lambda h: h[0])
    for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
        if end is None or start < end:
            raise InvalidWindow("an override's intervals must not overlap")
    check_on_grid(day_intervals(day, day, [], {day: list(hours)}, zone), length, zone)
    found = await session.get(ScheduleOverride, (provider.id, day))
    if found is None:
        found = ScheduleOverride(provider_id=provider.id, day=day)
        session.add(found)
    found.intervals, found.updated_at = [hours_text(h) for h in hours], now
    await session.flush()
    change = await republish(session, settings, provider, now, on_conflict, (day, day))
    return found, _count(change)


async def remove_override(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    day: date,
    now: datetime,
    on_conflict: OnConflict,
) -> Change:
    """The date follows its weekday's hours again."""
    provider = await _locked(session, provider_id)
    found = await session.get(ScheduleOverride, (provider.id, day))
    if found is None:
        raise NotFound(f"provider {provider_id!r} has no override on {day.isoformat()}")
    await session.delete(found)
    await session.flush()
    return _count(await republish(session, settings, provider, now, on_conflict, (day, day)))


async def overrides_page(
    session: AsyncSession,
    provider_id: str,
    first: date | None,
    last: date | None,
    after: date | None,
    limit: int,
) -> Sequence[ScheduleOverride]:
    """The provider's overrides by date (one more than `limit`, for the next page)."""
    provider = await providers.get_provider(session, provider_id)
    query = select(ScheduleOverride).where(ScheduleOverride.provider_id == provider.id)
    if first is not None:
        query = query.where(ScheduleOverride.day >= first)
    if last is not None:
        query = query.where(ScheduleOverride.day < last)
    if after is not None:
        query = query.where(ScheduleOverride.day > after)
    query = query.order_by(ScheduleOverride.day).limit(limit + 1)
    return (await session.scalars(query)).all()


MAX_TIME_OFF = timedelta(days=3 * 366)


async def add_time_off(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    start: datetime,
    end: datetime,
    reason: str | None,
    now: datetime,
    on_conflict: OnConflict,
) -> tuple[TimeOff, Change]:
    """One stretch away, however many weeks: every slot overlapping it (published by
    the schedule or not) is withdrawn from now on, bookings on them follow
    `on_conflict`, and the schedule publishes nothing there until it is deleted."""
    if end <= start:
        raise InvalidWindow("end_time must be after start_time")
    if end - start > MAX_TIME_OFF:
        raise InvalidWindow(f"time off may span at most {MAX_TIME_OFF.days} days")
    provider = await _locked(session, provider_id)
    away = TimeOff(
        id=uuid.uuid4(),
        provider_id=provider.id,
        start_time=start,
        end_time=end,
        reason=reason,
        created_at=now,
    )
    session.add(away)
    await session.flush()
    length = timedelta(minutes=settings.slot_minutes)
    # Every slot that overlaps [start, end) and has not begun.
    first = max(start - length + timedelta(microseconds=1), now)
    change = Change(created=0, removed=0)
    if first < end:
        withdrawn = slots.Withdrawn(provider.id, first, end)
        removed, conflicts = await withdraw(session, [withdrawn], now, on_conflict)
        cancelled, moved = await settle(session, settings, conflicts, now, on_conflict)
        change = _count(Change(0, removed, cancelled, moved))
    return away, change


async def remove_time_off(
    session: AsyncSession, settings: Settings, provider_id: str, time_off_id: str, now: datetime
) -> Change:
    """The schedule publishes there again (slots published otherwise do not come back)."""
    provider = await _locked(session, provider_id)
    away = await session.get(TimeOff, parse_id(time_off_id, "time off"))
    if away is None or away.provider_id != provider.id:
        raise NotFound(f"time off {time_off_id!r} does not exist")
    zone = ZoneInfo(provider.timezone)
    dates = (away.start_time.astimezone(zone).date(), away.end_time.astimezone(zone).date())
    await session.delete(away)
    await session.flush()
    return _count(await republish(session, settings, provider, now, OnConflict.REFUSE, dates))


async def time_off_page(
    session: AsyncSession, provider_id: str, request: PageRequest
) -> Sequence[TimeOff]:
    """The provider's time off by (start_time, id), one more than the page."""
    provider = await providers.get_provider(session, provider_id)
    query = select(TimeOff).where(TimeOff.provider_id == provider.id)
    if request.after is not None:
        at, last = request.after.at, request.after.id
        query = query.where(
            TimeOff.start_time >= at, or_(TimeOff.start_time > at, TimeOff.id > last)
        )
    query = query.order_by(TimeOff.start_time, TimeOff.id).limit(request.limit + 1)
    return (await session.scalars(query)).all()
