"""The provider's other calendars on its standing-week page: connect an iCal address or a
CalDAV calendar (and have bookings written to it),
see each one's status, last error and the bookings its busy time overlaps, read it now,
disconnect it. Through the same service and rules as the API."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.auth.tokens import Role
from appointments.busy import service as calendars
from appointments.busy.models import Calendar, CalendarKind
from appointments.busy.router import commit_and_read
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import DomainError
from appointments.pagination import PageRequest
from appointments.scheduling.models import Reservation
from appointments.web.pages import ProviderPosterDep, attempt, redirect, signed_in

router = APIRouter(include_in_schema=False)

CALENDARS_SHOWN = 20
CONFLICTS_SHOWN = 20


async def overview(
    session: AsyncSession, provider_id: uuid.UUID, now: datetime
) -> list[tuple[Calendar, Sequence[Reservation]]]:
    """The provider's calendars, each with the live bookings its busy time overlaps."""
    found = await calendars.page(session, str(provider_id), PageRequest(CALENDARS_SHOWN, None))
    shown = []
    for calendar in found[:CALENDARS_SHOWN]:
        clashes = await calendars.conflicts(
            session,
            str(provider_id),
            str(calendar.id),
            now,
            PageRequest(CONFLICTS_SHOWN, None),
        )
        shown.append((calendar, clashes[:CONFLICTS_SHOWN]))
    return shown


@router.post("/provider/calendars")
async def connect(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    url: Annotated[str, Form(max_length=2048)],
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=500)] = "",
    kind: Annotated[CalendarKind, Form()] = CalendarKind.ICS,
    write_bookings: Annotated[bool, Form()] = False,
) -> Response:
    """The API's connect; the first read starts at once."""
    principal = signed_in(visitor, Role.PROVIDER, "POST", "/providers/{provider_id}/calendars")
    now = clock.now()
    outcome = await attempt(
        session,
        lambda: calendars.add(
            session,
            settings,
            principal.subject,
            calendars.Connection(kind, url, username or None, password or None, write_bookings),
            now,
        ),
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"That calendar was not connected: {outcome.detail}."
        return redirect(request, visitor, "/provider/schedule")
    await commit_and_read(request, session, settings, outcome.id, now)
    visitor.session.flash = "Calendar connected: it is being read now."
    return redirect(request, visitor, "/provider/schedule")


@router.post("/provider/calendars/{calendar_id}/sync")
async def read_now(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    calendar_id: uuid.UUID,
) -> Response:
    path = "/providers/{provider_id}/calendars/{calendar_id}/sync"
    principal = signed_in(visitor, Role.PROVIDER, "POST", path)
    now = clock.now()
    try:
        found = await calendars.get(session, principal.subject, str(calendar_id))
    except DomainError as exc:
        visitor.session.flash = f"That calendar could not be read: {exc.detail}."
        return redirect(request, visitor, "/provider/schedule")
    await calendars.due_now(session, found.id, now)
    await commit_and_read(request, session, settings, found.id, now)
    visitor.session.flash = "The calendar is being read now."
    return redirect(request, visitor, "/provider/schedule")


@router.post("/provider/calendars/{calendar_id}/delete")
async def disconnect(
    request: Request,
    visitor: ProviderPosterDep,
    session: SessionDep,
    clock: ClockDep,
    calendar_id: uuid.UUID,
) -> Response:
    path = "/providers/{provider_id}/calendars/{calendar_id}"
    principal = signed_in(visitor, Role.PROVIDER, "DELETE", path)
    outcome = await attempt(
        session,
        lambda: calendars.remove(session, principal.subject, str(calendar_id), clock.now()),
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"That calendar was not disconnected: {outcome.detail}."
    else:
        visitor.session.flash = "Calendar disconnected: its busy time no longer blocks slots."
    return redirect(request, visitor, "/provider/schedule")
