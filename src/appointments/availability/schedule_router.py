"""The provider's standing week over HTTP: the weekly schedule, date overrides, time off."""

from datetime import UTC, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from appointments.availability import schedule
from appointments.availability.router import OnConflictQuery, moved_out
from appointments.availability.schedule_models import Schedule, ScheduleOverride, TimeOff
from appointments.availability.schedule_schemas import (
    IntervalOut,
    OverrideIn,
    OverrideOut,
    ScheduleChangeOut,
    ScheduleIn,
    ScheduleOut,
    TimeOffIn,
    TimeOffOut,
    WeeklyRuleOut,
)
from appointments.availability.service import OnConflict
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import problem_responses
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page
from appointments.providers.models import Provider
from appointments.scheduling.conflicts import conflict_of
from appointments.schemas import IsoDate

router = APIRouter(prefix="/providers/{provider_id}", tags=["schedule"])


def change_out(change: schedule.Change, now: datetime) -> ScheduleChangeOut:
    return ScheduleChangeOut(
        created=change.created,
        removed=change.removed,
        cancelled=[conflict_of(r, now) for r in change.cancelled],
        moved=moved_out(change.moved),
    )


def schedule_out(
    provider: Provider, found: Schedule, change: ScheduleChangeOut | None = None
) -> ScheduleOut:
    return ScheduleOut(
        provider_id=provider.id,
        rules=[WeeklyRuleOut(**rule) for rule in found.rules],
        horizon_days=found.horizon_days,
        timezone=provider.timezone,
        published_through=found.published_through,
        updated_at=found.updated_at,
        change=change,
    )


def override_out(found: ScheduleOverride, change: ScheduleChangeOut | None = None) -> OverrideOut:
    return OverrideOut(
        date=found.day,
        intervals=[IntervalOut(**hours) for hours in found.intervals],
        updated_at=found.updated_at,
        change=change,
    )


def time_off_out(away: TimeOff, change: ScheduleChangeOut | None = None) -> TimeOffOut:
    return TimeOffOut(
        id=away.id,
        provider_id=away.provider_id,
        start_time=away.start_time,
        end_time=away.end_time,
        reason=away.reason,
        created_at=away.created_at,
        change=change,
    )


@router.put("/schedule", response_model=ScheduleOut, responses=problem_responses(404, 409, 422))
async def put_schedule(
    provider_id: str,
    data: ScheduleIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    on_conflict: OnConflictQuery = OnConflict.REFUSE,
) -> ScheduleOut:
    """Set the weekly hours (wall-clock time in the provider's zone) and the horizon.
    Slots are published from today to today + `horizon_days` and kept so, day after day;
    slots the schedule published that it no longer covers are withdrawn, and bookings
    on them follow `on_conflict` (409 `availability_conflict` listing them, nothing
    changed, by default). Slots published otherwise are never touched."""
    now = clock.now()
    rules = [(rule.weekday, schedule.parse_hours(rule.start, rule.end)) for rule in data.rules]
    provider, found, change = await schedule.set_schedule(
        session, settings, provider_id, rules, data.horizon_days, now, on_conflict
    )
    return schedule_out(provider, found, change_out(change, now))


@router.get("/schedule", response_model=ScheduleOut, responses=problem_responses(404))
async def get_schedule(provider_id: str, session: SessionDep) -> ScheduleOut:
    """The weekly hours, the horizon and how far the slots are published."""
    provider, found = await schedule.get_schedule(session, provider_id)
    return schedule_out(provider, found)


@router.delete("/schedule", status_code=204, responses=problem_responses(404))
async def delete_schedule(provider_id: str, session: SessionDep) -> Response:
    """Stop the schedule: nothing more is published; the slots it published stay."""
    await schedule.remove_schedule(session, provider_id)
    return Response(status_code=204)


@router.put(
    "/schedule/overrides/{day}",
    response_model=OverrideOut,
    responses=problem_responses(404, 409, 422),
)
async def put_override(
    provider_id: str,
    day: IsoDate,
    data: OverrideIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    on_conflict: OnConflictQuery = OnConflict.REFUSE,
) -> OverrideOut:
    """The date's own hours instead of its weekday's (wall-clock times; an empty list
    closes the day). Republished at once; bookings on slots it withdraws follow
    `on_conflict`."""
    now = clock.now()
    hours = [schedule.parse_hours(i.start, i.end) for i in data.intervals]
    found, change = await schedule.set_override(
        session, settings, provider_id, day, hours, now, on_conflict
    )
    return override_out(found, change_out(change, now))


@router.delete(
    "/schedule/overrides/{day}",
    response_model=ScheduleChangeOut,
    responses=problem_responses(404, 409, 422),
)
async def delete_override(
    provider_id: str,
    day: IsoDate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    on_conflict: OnConflictQuery = OnConflict.REFUSE,
) -> ScheduleChangeOut:
    """The date follows its weekday's hours again (republished at once)."""
    now = clock.now()
    change = await schedule.remove_override(session, settings, provider_id, day, now, on_conflict)
    return change_out(change, now)


def _day_key(found: ScheduleOverride) -> Keyset:
    # Dates are unique per provider: the date alone orders the keyset.
    return Keyset(at=datetime.combine(found.day, time(0), UTC), id=found.provider_id)


@router.get(
    "/schedule/overrides",
    response_model=Page[OverrideOut],
    responses=problem_responses(404, 422),
)
async def list_overrides(
    provider_id: str,
    session: SessionDep,
    paging: Annotated[PageRequest, Depends(page_request)],
    first: Annotated[IsoDate | None, Query(alias="from", description="Dates on or after.")] = None,
    last: Annotated[IsoDate | None, Query(alias="to", description="Dates before.")] = None,
) -> Page[OverrideOut]:
    """The provider's date overrides, by date."""
    after = paging.after.at.date() if paging.after is not None else None
    rows = await schedule.overrides_page(session, provider_id, first, last, after, paging.limit)
    items, cursor = split_page(rows, paging, _day_key)
    return Page(items=[override_out(found) for found in items], next_cursor=cursor)


@router.post(
    "/time-off",
    status_code=201,
    response_model=TimeOffOut,
    responses=problem_responses(404, 409, 422),
)
async def post_time_off(
    provider_id: str,
    data: TimeOffIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    on_conflict: OnConflictQuery = OnConflict.REFUSE,
) -> TimeOffOut:
    """A stretch away (one entry however many weeks): every slot overlapping it that
    has not begun is withdrawn, whoever published it; bookings on them follow
    `on_conflict`; the schedule publishes nothing there until it is deleted."""
    now = clock.now()
    away, change = await schedule.add_time_off(
        session,
        settings,
        provider_id,
        data.start_time,
        data.end_time,
        data.reason,
        now,
        on_conflict,
    )
    return time_off_out(away, change_out(change, now))


def _time_off_key(away: TimeOff) -> Keyset:
    return Keyset(at=away.start_time, id=away.id)


@router.get("/time-off", response_model=Page[TimeOffOut], responses=problem_responses(404, 422))
async def list_time_off(
    provider_id: str,
    session: SessionDep,
    paging: Annotated[PageRequest, Depends(page_request)],
) -> Page[TimeOffOut]:
    """The provider's time off, by start."""
    rows = await schedule.time_off_page(session, provider_id, paging)
    items, cursor = split_page(rows, paging, _time_off_key)
    return Page(items=[time_off_out(away) for away in items], next_cursor=cursor)


@router.delete(
    "/time-off/{time_off_id}",
    response_model=ScheduleChangeOut,
    responses=problem_responses(404, 409, 422),
)
async def delete_time_off(
    provider_id: str,
    time_off_id: str,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ScheduleChangeOut:
    """Back at work: the schedule publishes there again at once."""
    now = clock.now()
    change = await schedule.remove_time_off(session, settings, provider_id, time_off_id, now)
    return change_out(change, now)
