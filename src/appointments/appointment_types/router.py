"""Appointment types over HTTP: CRUD, and the bookable start times of one type."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from appointments.appointment_types import service, start_page, start_times
from appointments.appointment_types.models import AppointmentType
from appointments.appointment_types.schemas import (
    AppointmentTypeIn,
    AppointmentTypeOut,
    StartTimeOut,
)
from appointments.appointment_types.start_times import StartTime
from appointments.clock import Clock
from appointments.conditional import CONDITIONAL, IfNoneMatch, json_page
from appointments.db import reading
from appointments.deps import ClockDep, ReadEngineDep, ReadSessionDep, SessionDep, SettingsDep
from appointments.errors import problem_responses
from appointments.ids import parse_id
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page
from appointments.settings import Settings
from appointments.timeparams import AwareQueryTime

router = APIRouter(prefix="/providers/{provider_id}/appointment-types", tags=["appointment types"])


def _type_key(kind: AppointmentType) -> Keyset:
    return Keyset(at=kind.created_at, id=kind.id)


def _start_key(start: StartTime) -> Keyset:
    return Keyset(at=start.start_time, id=start.slot_id)


@router.post(
    "",
    status_code=201,
    response_model=AppointmentTypeOut,
    responses=problem_responses(404, 422),
)
async def create_appointment_type(
    provider_id: str,
    data: AppointmentTypeIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> AppointmentType:
    """Create an appointment type: its length, buffers and booking terms."""
    return await service.create_type(session, settings, provider_id, data, clock.now())


@router.get("", response_model=Page[AppointmentTypeOut], responses=problem_responses(404, 422))
async def list_appointment_types(
    provider_id: str,
    session: ReadSessionDep,
    paging: Annotated[PageRequest, Depends(page_request)],
) -> Page[AppointmentTypeOut]:
    """List the provider's appointment types, oldest first."""
    rows = await service.list_types(session, provider_id, paging)
    items, cursor = split_page(rows, paging, _type_key)
    return Page[AppointmentTypeOut](
        items=[AppointmentTypeOut.model_validate(kind) for kind in items], next_cursor=cursor
    )


@router.get("/{type_id}", response_model=AppointmentTypeOut, responses=problem_responses(404))
async def get_appointment_type(
    provider_id: str, type_id: str, session: ReadSessionDep
) -> AppointmentType:
    """Get one appointment type of the provider."""
    return await service.get_type(session, provider_id, type_id)


@router.put("/{type_id}", response_model=AppointmentTypeOut, responses=problem_responses(404, 422))
async def replace_appointment_type(
    provider_id: str,
    type_id: str,
    data: AppointmentTypeIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> AppointmentType:
    """Replace an appointment type; omitted optional fields take their defaults."""
    return await service.replace_type(session, settings, provider_id, type_id, data, clock.now())


@router.delete(
    "/{type_id}", status_code=204, response_class=Response, responses=problem_responses(404)
)
async def delete_appointment_type(
    provider_id: str, type_id: str, session: SessionDep, clock: ClockDep
) -> Response:
    """Delete an appointment type; appointments already booked keep their times."""
    await service.delete_type(session, provider_id, type_id, clock.now())
    return Response(status_code=204)


@router.get(
    "/{type_id}/availability",
    response_model=Page[StartTimeOut],
    responses={**problem_responses(404, 422), **CONDITIONAL},
)
async def list_start_times(
    request: Request,
    provider_id: str,
    type_id: str,
    engine: ReadEngineDep,
    clock: ClockDep,
    settings: SettingsDep,
    paging: Annotated[PageRequest, Depends(page_request)],
    start_from: Annotated[
        AwareQueryTime | None, Query(alias="from", description="Start times at or after.")
    ] = None,
    start_before: Annotated[
        AwareQueryTime | None, Query(alias="to", description="Start times before.")
    ] = None,
    repeat_count: Annotated[
        int | None,
        Query(
            ge=2,
            le=52,
            description="Only starts where a weekly series of this many occurrences (the "
            "same wall-clock time in the provider's zone) is bookable in whole.",
        ),
    ] = None,
    repeat_interval_weeks: Annotated[
        int, Query(ge=1, le=4, description="Weeks between occurrences (with `repeat_count`).")
    ] = 1,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """List the bookable start times of an appointment type, in start order.

    A start is bookable when every slot of the appointment and its buffers exists
    and is free, it lies past the notice and within the horizon, and its day (in
    the provider's zone) has not reached the type's daily cap. Of a group type
    (`capacity` > 1), also a start where a live session of the type has a seat left;
    `seats_left` says how many (the capacity, where no session has begun). The answer carries an
    `ETag`; send it back in `If-None-Match` to get 304 while the page is unchanged.
    """
    return await start_times_answer(
        engine,
        request.app.state.read_sessionmaker,
        clock,
        settings,
        provider_id,
        type_id,
        paging,
        start_from,
        start_before,
        if_none_match,
        None if repeat_count is None else start_times.Repeat(repeat_count, repeat_interval_weeks),
    )


async def start_times_answer(
    engine: AsyncEngine,
    read_sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    settings: Settings,
    provider_id: str,
    type_id: str,
    paging: PageRequest,
    start_from: datetime | None,
    start_before: datetime | None,
    if_none_match: str | None,
    repeat: start_times.Repeat | None = None,
) -> Response:
    """The start-time listing's answer from parsed parameters (the route's, and
    fast_paths')."""
    now = clock.now()
    if engine.dialect.name == "postgresql":
        body = await start_page.page_json(
            engine,
            settings,
            parse_id(provider_id, "provider"),
            parse_id(type_id, "appointment type"),
            start_from=start_from,
            start_before=start_before,
            now=now,
            request=paging,
            repeat=repeat,
        )
        return json_page(if_none_match, body)
    async with reading(read_sessionmaker) as session:
        rules, rows = await service.bookable_start_times(
            session,
            settings,
            provider_id,
            type_id,
            start_from=start_from,
            start_before=start_before,
            now=now,
            request=paging,
            repeat=repeat,
        )
    items, cursor = split_page(rows, paging, _start_key)
    # One serialisation of plain values: no model per start, no re-validation of the
    # answer against the response model (what returning a model would cost).
    page = {
        "items": [
            {
                "slot_id": start.slot_id,
                "start_time": start.start_time,
                "end_time": start.start_time + rules.duration,
                "seats_left": start.seats_left,
            }
            for start in items
        ],
        "next_cursor": cursor,
    }
    return json_page(if_none_match, to_json(page))
