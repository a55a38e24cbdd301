"""The provider's standing week on a page: weekly hours, a month of date overrides,
time off. Every form is the API's own operation (`availability.schedule`), in a
savepoint: a refusal (a booking in the way, hours off the grid) changes nothing and
comes back in words."""

import calendar
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from appointments.auth.tokens import Role
from appointments.availability import schedule
from appointments.availability.schedule_models import Schedule, TimeOff
from appointments.availability.service import OnConflict
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import DomainError
from appointments.pagination import PageRequest
from appointments.providers import service as providers
from appointments.providers.models import Provider
from appointments.web import calendar_pages
from appointments.web.pages import (
    ProviderPosterDep,
    Visitor,
    VisitorDep,
    attempt,
    redirect,
    render,
    signed_in,
)
from appointments.web.provider_pages import WEEKDAYS, ClockField

router = APIRouter(include_in_schema=False)

T = TypeVar("T")
TIME_OFF_SHOWN = 100
ConflictField = Annotated[OnConflict, Form()]


@dataclass(frozen=True)
class DayHours:
    """One weekday's row of the form: open or not, and its first interval."""

    weekday: str
    open: bool
    start: str
    end: str
    more: int  # further intervals set through the API (kept as they are)


@dataclass(frozen=True)
class MonthDay:
    """A date of the month view: its hours in words, and where they come from."""

    date: date
    hours: str
    source: str  # "weekly", "override", "closed", "time off", "" (outside the month)


def _weekly_rows(found: Schedule | None) -> list[DayHours]:
    rules = found.rules if found is not None else []
    rows = []
    for day in WEEKDAYS:
        mine = [rule for rule in rules if rule["weekday"] == day]
        if found is None:  # a first schedule: Monday to Friday, 9 to 5, to edit
            rows.append(DayHours(day, day not in ("sat", "sun"), "09:00", "17:00", 0))
        elif mine:
            rows.append(DayHours(day, True, mine[0]["start"], mine[0]["end"], len(mine) - 1))
        else:
            rows.append(DayHours(day, False, "09:00", "17:00", 0))
    return rows


def _words(hours: Sequence[schedule.Hours]) -> str:
    return ", ".join(
        f"{h['start']}–{h['end']}" for h in (schedule.hours_text(part) for part in hours)
    )


def _month(
    first: date,
    found: Schedule | None,
    overrides: dict[date, list[schedule.Hours]],
    away: Sequence[TimeOff],
    zone: ZoneInfo,
) -> list[list[MonthDay]]:
    """The month's weeks, Monday first, each date with its hours."""
    rules = (
        []
        if found is None
        else [
            (rule["weekday"], schedule.parse_hours(rule["start"], rule["end"]))
            for rule in found.rules
        ]
    )
    weeks = []
    for week in calendar.Calendar().monthdatescalendar(first.year, first.month):
        row = []
        for day in week:
            if day.month != first.month:
                row.append(MonthDay(day, "", ""))
                continue
            begins = datetime.combine(day, time(0), zone)
            ends = begins + timedelta(days=1)
            if any(t.start_time < ends and t.end_time > begins for t in away):
                row.append(MonthDay(day, "away", "time off"))
            elif day in overrides:
                hours = overrides[day]
                row.append(MonthDay(day, _words(hours) or "closed", "override"))
            else:
                weekday = WEEKDAYS[day.weekday()]
                hours = [h for d, h in rules if d == weekday]
                row.append(
                    MonthDay(day, _words(hours) or "closed", "weekly" if hours else "closed")
                )
        weeks.append(row)
    return weeks


def _first_of(value: str | None, today: date) -> date:
    if value:
        try:
            chosen = date.fromisoformat(f"{value}-01")
            if date(1971, 1, 1) <= chosen <= date(8999, 1, 1):
                return chosen
        except ValueError:
            pass
    return today.replace(day=1)


@router.get("/provider/schedule")
async def schedule_page(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    clock: ClockDep,
    month: str | None = None,
) -> Response:
    principal = signed_in(visitor, Role.PROVIDER, "GET", "/providers/{provider_id}/schedule")
    provider = await providers.get_provider(session, principal.subject)
    zone = ZoneInfo(provider.timezone)
    today = clock.now().astimezone(zone).date()
    first = _first_of(month, today)
    last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    found = await session.get(Schedule, provider.id)
    override_rows = await schedule.overrides_page(
        session, str(provider.id), first, last + timedelta(days=1), None, 31
    )
    overrides = {
        row.day: [schedule.parse_hours(h["start"], h["end"]) for h in row.intervals]
        for row in override_rows
    }
    away = await schedule.time_off_page(
        session, str(provider.id), PageRequest(limit=TIME_OFF_SHOWN, after=None)
    )
    others = await calendar_pages.overview(session, provider.id, clock.now())
    return render(
        request,
        visitor,
        "schedule.html",
        provider=provider,
        schedule=found,
        weekly=_weekly_rows(found),
        month=_month(first, found, overrides, away, zone),
        month_first=first,
        previous_month=(first - timedelta(days=1)).strftime("%Y-%m"),
        next_month=(last + timedelta(days=1)).strftime("%Y-%m"),
        overrides=override_rows,
        time_off=away[:TIME_OFF_SHOWN],
        zone=zone,
        calendars=others,
    )


async def _act(
    request: Request,
    visitor: Visitor,
    session: SessionDep,
    action: Callable[[], Awaitable[T]],
    done: Callable[[T], str],
    month: str = "",
) -> Response:
    outcome = await attempt(session, action)
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"Nothing was changed: {outcome.detail}."
    else:
        visitor.session.flash = done(outcome)
    return redirect(request, visitor, "/provider/schedule", month=month)


def _changed(change: schedule.Change) -> str:
    parts = [f"{change.created} slot{'s' if change.created != 1 else ''} published"]
    if change.removed:
        parts.append(f"{change.removed} withdrawn")
    if change.moved:
        parts.append(f"{len(change.moved)} booking(s) moved")
    if change.cancelled:
        parts.append(f"{len(change.cancelled)} booking(s) cancelled")
    return ", ".join(parts) + "."


@router.post("/provider/schedule")
async def save_weekly(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    horizon_days: Annotated[int, Form(ge=1, le=730)],
    on_conflict: ConflictField = OnConflict.REFUSE,
    open_days: Annotated[list[str] | None, Form(alias="open")] = None,
    mon_start: ClockField = "",
    mon_end: ClockField = "",
    tue_start: ClockField = "",
    tue_end: ClockField = "",
    wed_start: ClockField = "",
    wed_end: ClockField = "",
    thu_start: ClockField = "",
    thu_end: ClockField = "",
    fri_start: ClockField = "",
    fri_end: ClockField = "",
    sat_start: ClockField = "",
    sat_end: ClockField = "",
    sun_start: ClockField = "",
    sun_end: ClockField = "",
) -> Response:
    """The weekly hours (one interval per open weekday; further intervals a weekday has
    through the API are kept) and the horizon: the API's schedule PUT."""
    principal = signed_in(visitor, Role.PROVIDER, "PUT", "/providers/{provider_id}/schedule")
    given = {
        "mon": (mon_start, mon_end),
        "tue": (tue_start, tue_end),
        "wed": (wed_start, wed_end),
        "thu": (thu_start, thu_end),
        "fri": (fri_start, fri_end),
        "sat": (sat_start, sat_end),
        "sun": (sun_start, sun_end),
    }
    provider = await providers.get_provider(session, principal.subject)
    found = await session.get(Schedule, provider.id)
    kept = found.rules if found is not None else []

    async def save() -> schedule.Change:
        rules: list[tuple[str, schedule.Hours]] = []
        for day in WEEKDAYS:
            if day not in (open_days or []):
                continue
            start, end = given[day]
            rules.append((day, schedule.parse_hours(start, "24:00" if end == "00:00" else end)))
            extra = [r for r in kept if r["weekday"] == day][1:]
            rules += [(day, schedule.parse_hours(r["start"], r["end"])) for r in extra]
        *_, change = await schedule.set_schedule(
            session, settings, principal.subject, rules, horizon_days, clock.now(), on_conflict
        )
        return change

    return await _act(
        request, visitor, session, save, lambda c: f"Weekly hours saved: {_changed(c)}"
    )


@router.post("/provider/schedule/overrides")
async def save_override(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    day: Annotated[date, Form()],
    start: ClockField = "",
    end: ClockField = "",
    closed: Annotated[bool, Form()] = False,
    on_conflict: ConflictField = OnConflict.REFUSE,
) -> Response:
    """A date's own hours (or closed all day): the API's override PUT."""
    path = "/providers/{provider_id}/schedule/overrides/{day}"
    principal = signed_in(visitor, Role.PROVIDER, "PUT", path)

    async def save() -> schedule.Change:
        hours = [] if closed else [schedule.parse_hours(start, "24:00" if end == "00:00" else end)]
        _, change = await schedule.set_override(
            session, settings, principal.subject, day, hours, clock.now(), on_conflict
        )
        return change

    return await _act(
        request,
        visitor,
        session,
        save,
        lambda c: f"{'Closed' if closed else 'Hours set'} on {day.isoformat()}: {_changed(c)}",
        day.strftime("%Y-%m"),
    )


@router.post("/provider/schedule/overrides/{day}/delete")
async def delete_override(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    day: date,
    on_conflict: ConflictField = OnConflict.REFUSE,
) -> Response:
    path = "/providers/{provider_id}/schedule/overrides/{day}"
    principal = signed_in(visitor, Role.PROVIDER, "DELETE", path)
    return await _act(
        request,
        visitor,
        session,
        lambda: schedule.remove_override(
            session, settings, principal.subject, day, clock.now(), on_conflict
        ),
        lambda c: f"{day.isoformat()} follows its weekday again: {_changed(c)}",
        day.strftime("%Y-%m"),
    )


def _local(value: str, zone: ZoneInfo) -> datetime:
    """A datetime-local field, read in the provider's zone."""
    return datetime.fromisoformat(value).replace(tzinfo=zone)


@router.post("/provider/time-off")
async def add_time_off(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    start: Annotated[str, Form(max_length=20, pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")],
    end: Annotated[str, Form(max_length=20, pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")],
    reason: Annotated[str, Form(max_length=500)] = "",
    on_conflict: ConflictField = OnConflict.REFUSE,
) -> Response:
    """Time off from `start` to `end`, wall-clock in the provider's zone: the API's POST."""
    principal = signed_in(visitor, Role.PROVIDER, "POST", "/providers/{provider_id}/time-off")
    provider: Provider = await providers.get_provider(session, principal.subject)
    zone = ZoneInfo(provider.timezone)

    async def save() -> schedule.Change:
        _, change = await schedule.add_time_off(
            session,
            settings,
            principal.subject,
            _local(start, zone),
            _local(end, zone),
            reason or None,
            clock.now(),
            on_conflict,
        )
        return change

    return await _act(
        request, visitor, session, save, lambda c: f"Time off added: {_changed(c)}", start[:7]
    )


@router.post("/provider/time-off/{time_off_id}/delete")
async def delete_time_off(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    time_off_id: uuid.UUID,
) -> Response:
    path = "/providers/{provider_id}/time-off/{time_off_id}"
    principal = signed_in(visitor, Role.PROVIDER, "DELETE", path)
    return await _act(
        request,
        visitor,
        session,
        lambda: schedule.remove_time_off(
            session, settings, principal.subject, str(time_off_id), clock.now()
        ),
        lambda c: f"Time off removed: {_changed(c)}",
    )
