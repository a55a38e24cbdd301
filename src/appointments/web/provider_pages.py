"""The provider's page: the week's bookings (cancel one, or a whole group session) and
publishing availability."""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from appointments.appointment_types import repository as appointment_types
from appointments.auth.tokens import Role
from appointments.availability import repository as slot_repository
from appointments.availability import service as availability
from appointments.booking import repository as reservations
from appointments.booking import sessions as group_sessions
from appointments.booking.repository import Owner
from appointments.calendar.export import calendar_response
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import DomainError
from appointments.pagination import PageRequest
from appointments.providers import service as providers
from appointments.scheduling.models import Reservation
from appointments.web import webhook_pages
from appointments.web.pages import (
    ProviderPosterDep,
    Visitor,
    VisitorDep,
    attempt,
    cancel_and_tell,
    redirect,
    render,
    signed_in,
    subject_id,
)
from appointments.web.week import Week

router = APIRouter(include_in_schema=False)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
BOOKINGS_SHOWN = 2000
TYPES_SHOWN = 50
CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
ClockField = Annotated[str, Form(max_length=10)]


@router.get("/provider")
async def dashboard(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    clock: ClockDep,
    week: str | None = None,
) -> Response:
    return await _show(request, visitor, session, clock, week, 200)


async def _show(
    request: Request,
    visitor: Visitor,
    session: SessionDep,
    clock: ClockDep,
    week: str | None,
    status: int,
) -> Response:
    principal = signed_in(visitor, Role.PROVIDER, "GET", "/providers/{provider_id}/reservations")
    provider = await providers.get_provider(session, principal.subject)
    now = clock.now()
    shown = Week.parse(week, now, visitor.tz)
    booked = await reservations.live_with_counterpart(
        session, Owner(provider_id=provider.id), now, shown.start, shown.end, BOOKINGS_SHOWN
    )
    today = now.astimezone(ZoneInfo(provider.timezone)).date()
    kinds = await appointment_types.page(
        session, provider.id, PageRequest(limit=TYPES_SHOWN, after=None)
    )
    hooks = await webhook_pages.overview(session, provider.id)
    published = await open_hours(session, provider.id, shown.start, shown.end, visitor.tz)
    return render(
        request,
        visitor,
        "provider.html",
        status=status,
        provider=provider,
        week=shown,
        days=shown.group(by_session(booked), lambda item: item[0].start_time),
        weekdays=WEEKDAYS,
        today=today,
        kinds=kinds,
        hooks=hooks,
        open_hours=published,
    )


async def form_refused(
    request: Request, visitor: Visitor, session: SessionDep, clock: ClockDep, message: str
) -> Response:
    """A form on the provider's page that cannot be taken as sent: the page again,
    with the message, as 422 (nothing was changed)."""
    visitor.session.flash = message
    return await _show(request, visitor, session, clock, None, 422)


def _hours(start: str, end: str) -> tuple[time, time | None] | None:
    """The form's daily hours (HH:MM); a closing time of 24:00 (typed) or 00:00 (what a
    time input sends for midnight) is the end of the day, None. None when either is
    not a time of day."""
    if not (CLOCK.fullmatch(start) and (end == "24:00" or CLOCK.fullmatch(end))):
        return None
    closing = None if end in ("24:00", "00:00") else time.fromisoformat(end)
    return time.fromisoformat(start), closing


@router.post("/provider/publish")
async def publish(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    start_date: Annotated[date, Form()],
    end_date: Annotated[date, Form()],
    start: ClockField,
    end: ClockField,
    weekday: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Daily hours on the chosen weekdays of a date range, in the provider's own zone
    (the weekly-rules API, so daylight-saving changes are handled the same way)."""
    principal = signed_in(
        visitor, Role.PROVIDER, "POST", "/providers/{provider_id}/availability/weekly"
    )
    chosen = [day for day in WEEKDAYS if day in (weekday or [])]
    if not chosen:
        visitor.session.flash = "Nothing was published: choose at least one weekday."
        return redirect(request, visitor, "/provider")
    hours = _hours(start, end)
    if hours is None:
        message = "Nothing was published: daily hours are HH:MM, from 00:00 up to 24:00."
        return await form_refused(request, visitor, session, clock, message)
    opening, closing = hours
    rules = [(day, opening, closing) for day in chosen]
    outcome = await attempt(
        session,
        lambda: availability.publish_weekly(
            session, settings, principal.subject, rules, start_date, end_date
        ),
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"Nothing was published: {outcome.detail}."
    else:
        count = len(outcome[1])
        visitor.session.flash = f"Published {count} new slot{'s' if count != 1 else ''}."
    return redirect(request, visitor, "/provider", week=start_date.isoformat())


@dataclass(frozen=True)
class SessionItem:
    """The seats of one group session, shown as one line of the provider's week."""

    id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: str  # confirmed once any seat is, else held
    seats: int
    kind: str = "session"  # how the page tells it from a booking


def by_session(
    booked: Sequence[tuple[Reservation, str]],
) -> list[tuple[Reservation | SessionItem, str]]:
    """Plain bookings as they are; the seats of a group session as one item naming its
    clients (by name)."""
    shown: list[tuple[Reservation | SessionItem, str]] = []
    for seated in group_sessions.gathered(booked, lambda booking: booking[0].session_id):
        first = seated[0][0]
        if first.session_id is None:
            shown.append(seated[0])
            continue
        confirmed = any(r.status == "confirmed" for r, _ in seated)
        item = SessionItem(
            first.session_id,
            first.start_time,
            first.end_time,
            "confirmed" if confirmed else "held",
            sum(r.seats for r, _ in seated),
        )
        shown.append((item, ", ".join(sorted(n for _, n in seated))))
    return shown


@router.post("/provider/sessions/{session_id}/cancel")
async def cancel_session(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    session_id: str,
    week: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The API's cancel of a whole group session: every seat cancelled, each client told."""
    path = "/providers/{provider_id}/sessions/{session_id}/cancel"
    principal = signed_in(visitor, Role.PROVIDER, "POST", path)
    try:
        ended = await group_sessions.cancel(session, subject_id(principal), session_id, clock.now())
    except DomainError as exc:
        visitor.session.flash = f"That session could not be cancelled: {exc.detail}."
    else:
        count = len(ended.reservations)
        plural = "s" if count != 1 else ""
        visitor.session.flash = f"Cancelled the session ({count} booking{plural})."
    return redirect(request, visitor, "/provider", week=week)


@router.post("/provider/bookings/{reservation_id}/cancel")
async def cancel(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    reservation_id: str,
    week: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    path = "/providers/{provider_id}/reservations/{reservation_id}/cancel"
    principal = signed_in(visitor, Role.PROVIDER, "POST", path)
    owner = Owner(provider_id=subject_id(principal))
    await cancel_and_tell(session, settings, visitor, owner, reservation_id, clock.now())
    return redirect(request, visitor, "/provider", week=week)


@router.get("/provider/calendar.ics")
async def calendar(visitor: VisitorDep, session: SessionDep, clock: ClockDep) -> Response:
    principal = signed_in(
        visitor, Role.PROVIDER, "GET", "/providers/{provider_id}/reservations.ics"
    )
    provider = await providers.get_provider(session, principal.subject)
    owner = Owner(provider_id=provider.id)
    return await calendar_response(session, owner, f"{provider.name}: appointments", clock.now())


async def open_hours(
    session: SessionDep, provider_id: uuid.UUID, start: datetime, end: datetime, zone: ZoneInfo
) -> dict[date, str]:
    """Each local date's published hours in [start, end) (free or booked), in words."""
    runs: dict[date, list[list[datetime]]] = {}
    for begins, ends in await slot_repository.published_between(session, provider_id, start, end):
        spans = runs.setdefault(begins.astimezone(zone).date(), [])
        if spans and spans[-1][1] == begins:
            spans[-1][1] = ends
        else:
            spans.append([begins, ends])
    return {
        day: ", ".join(f"{a.astimezone(zone):%H:%M}–{b.astimezone(zone):%H:%M}" for a, b in spans)
        for day, spans in runs.items()
    }
