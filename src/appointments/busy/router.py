"""The provider's other calendars over HTTP."""

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from appointments.booking.schemas import ReservationOut
from appointments.busy import service
from appointments.busy.models import Calendar
from appointments.busy.schemas import CalendarIn, CalendarOut
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import problem_responses
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page
from appointments.scheduling.models import Reservation
from appointments.settings import Settings

router = APIRouter(prefix="/providers/{provider_id}/calendars", tags=["calendars"])


def _out(found: Calendar) -> CalendarOut:
    return CalendarOut.model_validate(found)


async def commit_and_read(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    calendar_id: uuid.UUID,
    now: datetime,
) -> None:
    """Commit the request's change (the read, in another session, must see it), then
    read the calendar in the background, after the answer (its status says how it
    went)."""
    await session.commit()
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    running: set[asyncio.Task[Any]] = request.app.state.calendar_reads
    task = asyncio.get_running_loop().create_task(
        service.sync(sessionmaker, settings, calendar_id, now)
    )
    running.add(task)
    task.add_done_callback(running.discard)


@router.post("", status_code=201, response_model=CalendarOut, responses=problem_responses(404, 422))
async def add_calendar(
    request: Request,
    provider_id: str,
    data: CalendarIn,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Connect another calendar of the provider: its busy time blocks slots here. It is
    read at once (in the background) and every APPOINTMENTS_CALENDAR_SYNC_SECONDS."""
    now = clock.now()
    found = await service.add(session, settings, provider_id, _connection(data), now)
    body = _out(found).model_dump(mode="json")
    await commit_and_read(request, session, settings, found.id, now)
    return JSONResponse(body, status_code=201)


def _connection(data: CalendarIn) -> service.Connection:
    return service.Connection(
        data.kind, data.url, data.username, data.password, data.write_bookings
    )


def _key(found: Calendar) -> Keyset:
    return Keyset(at=found.created_at, id=found.id)


@router.get("", response_model=Page[CalendarOut], responses=problem_responses(404, 422))
async def list_calendars(
    provider_id: str,
    session: SessionDep,
    paging: Annotated[PageRequest, Depends(page_request)],
) -> Page[CalendarOut]:
    """The provider's calendars, oldest first, with how their last read went."""
    rows = await service.page(session, provider_id, paging)
    items, cursor = split_page(rows, paging, _key)
    return Page(items=[_out(found) for found in items], next_cursor=cursor)


@router.get("/{calendar_id}", response_model=CalendarOut, responses=problem_responses(404))
async def get_calendar(provider_id: str, calendar_id: str, session: SessionDep) -> CalendarOut:
    return _out(await service.get(session, provider_id, calendar_id))


@router.put("/{calendar_id}", response_model=CalendarOut, responses=problem_responses(404, 422))
async def replace_calendar(
    request: Request,
    provider_id: str,
    calendar_id: str,
    data: CalendarIn,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Change the calendar's address or options; it is read again at once."""
    now = clock.now()
    found = await service.replace(
        session, settings, provider_id, calendar_id, _connection(data), now
    )
    body = _out(found).model_dump(mode="json")
    await commit_and_read(request, session, settings, found.id, now)
    return JSONResponse(body)


@router.delete("/{calendar_id}", status_code=204, responses=problem_responses(404))
async def delete_calendar(
    provider_id: str, calendar_id: str, session: SessionDep, clock: ClockDep
) -> Response:
    """Disconnect the calendar: its busy time no longer blocks any slot."""
    await service.remove(session, provider_id, calendar_id, clock.now())
    return Response(status_code=204)


@router.post(
    "/{calendar_id}/sync",
    status_code=202,
    response_model=CalendarOut,
    responses=problem_responses(404),
)
async def sync_calendar(
    request: Request,
    provider_id: str,
    calendar_id: str,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Read the calendar now (in the background: poll it for `last_synced_at` or
    `status`)."""
    now = clock.now()
    found = await service.get(session, provider_id, calendar_id)
    await service.due_now(session, found.id, now)
    body = _out(found).model_dump(mode="json")
    await commit_and_read(request, session, settings, found.id, now)
    return JSONResponse(body, status_code=202)


def _booking_key(found: Reservation) -> Keyset:
    return Keyset(at=found.start_time, id=found.id)


@router.get(
    "/{calendar_id}/conflicts",
    response_model=Page[ReservationOut],
    responses=problem_responses(404, 422),
)
async def list_conflicts(
    provider_id: str,
    calendar_id: str,
    session: SessionDep,
    clock: ClockDep,
    paging: Annotated[PageRequest, Depends(page_request)],
) -> Page[ReservationOut]:
    """Live bookings that the calendar's busy time overlaps: kept (a calendar never
    cancels a booking), for the provider to move or cancel."""
    now = clock.now()
    rows = await service.conflicts(session, provider_id, calendar_id, now, paging)
    items, cursor = split_page(rows, paging, _booking_key)
    return Page(items=[ReservationOut.at(r, now) for r in items], next_cursor=cursor)
