from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from appointments.availability import listing, service
from appointments.availability.created_json import weekly_json, window_json
from appointments.availability.schemas import (
    AvailabilityChangeOut,
    MovedOut,
    SlotFilter,
    SlotOut,
    WeeklyIn,
    WeeklyOut,
    WindowIn,
    WindowOut,
    WindowsIn,
)
from appointments.availability.service import AvailabilityChange, OnConflict
from appointments.booking.reschedule import Move
from appointments.clock import Clock
from appointments.conditional import CONDITIONAL, IfNoneMatch, json_page
from appointments.deps import ClockDep, ReadEngineDep, SessionDep, SettingsDep
from appointments.errors import NotFound, ValidationFailed, problem_responses
from appointments.ids import parse_id
from appointments.pagination import Page, PageRequest, page_request
from appointments.scheduling import rules
from appointments.scheduling.conflicts import conflict_of
from appointments.settings import Settings
from appointments.timeparams import AwareQueryTime

router = APIRouter(prefix="/providers/{provider_id}/availability", tags=["availability"])


@router.post(
    "",
    status_code=201,
    response_model=WindowOut,
    responses=problem_responses(404, 422),
)
async def publish_availability(
    provider_id: str, window: WindowIn, session: SessionDep, settings: SettingsDep
) -> Response:
    """Cut a window into slots; only slots the provider does not have yet are created."""
    created = await service.publish_window(
        session, settings, provider_id, window.start_time, window.end_time
    )
    body = window_json(window.start_time, window.end_time, created)
    return Response(body, status_code=201, media_type="application/json")


@router.get(
    "",
    response_model=Page[SlotOut],
    responses={**problem_responses(404, 422), **CONDITIONAL},
)
async def list_availability(
    provider_id: str,
    engine: ReadEngineDep,
    clock: ClockDep,
    settings: SettingsDep,
    paging: Annotated[PageRequest, Depends(page_request)],
    start_from: Annotated[
        AwareQueryTime | None, Query(alias="from", description="Slots starting at or after.")
    ] = None,
    start_before: Annotated[
        AwareQueryTime | None, Query(alias="to", description="Slots starting before.")
    ] = None,
    status: Annotated[
        SlotFilter,
        Query(
            description="`available` (default) lists bookable slots only; `all` lists every slot."
        ),
    ] = SlotFilter.AVAILABLE,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """List a provider's slots by start time; by default only the bookable ones.

    The answer carries an `ETag`; send it back in `If-None-Match` to get 304 while
    the page is unchanged."""
    return await slot_page_answer(
        engine,
        clock,
        settings,
        provider_id,
        paging,
        start_from,
        start_before,
        status,
        if_none_match,
    )


async def slot_page_answer(
    engine: AsyncEngine,
    clock: Clock,
    settings: Settings,
    provider_id: str,
    paging: PageRequest,
    start_from: datetime | None,
    start_before: datetime | None,
    status: SlotFilter,
    if_none_match: str | None,
) -> Response:
    """The listing's answer from parsed parameters (the route's, and fast_paths')."""
    now = clock.now()
    query = listing.Query(
        status=status,
        start_from=start_from,
        start_before=start_before,
        bookable_after=rules.bookable_after(now, rules.service_notice(settings)),
        now=now,
        request=paging,
    )
    body = await listing.slot_page(engine, parse_id(provider_id, "provider"), query)
    if body is None:
        raise NotFound(f"provider {provider_id!r} does not exist")
    return json_page(if_none_match, body)


RangeFrom = Annotated[
    AwareQueryTime,
    Query(alias="from", description="Start of the range (slots starting at or after)."),
]
RangeTo = Annotated[AwareQueryTime, Query(alias="to", description="End of the range (exclusive).")]
CancelConflicts = Annotated[
    bool,
    Query(description="Synonym of `on_conflict=cancel` (kept for older callers)."),
]
OnConflictQuery = Annotated[
    OnConflict,
    Query(
        description="Held or confirmed bookings on slots going away: `refuse` answers 409 "
        "listing them; `cancel` cancels them; `move` moves each to the earliest free start at "
        "or after its own within 14 days (same length and buffers), cancelling those that fit "
        "nowhere."
    ),
]


def _policy(on_conflict: OnConflict, cancel_conflicts: bool) -> OnConflict:
    if not cancel_conflicts:
        return on_conflict
    if on_conflict is OnConflict.MOVE:
        raise ValidationFailed("cancel_conflicts=true contradicts on_conflict=move")
    return OnConflict.CANCEL


def moved_out(moves: Sequence[Move]) -> list[MovedOut]:
    """The bookings an edit moved (`on_conflict=move`), as answers list them."""
    return [
        MovedOut(
            reservation_id=move.reservation.id,
            from_start_time=move.from_start_time,
            to_start_time=move.to_start_time,
        )
        for move in moves
    ]


def _change_out(change: AvailabilityChange, now: datetime) -> AvailabilityChangeOut:
    return AvailabilityChangeOut(
        created=[SlotOut.at(slot, now) for slot in change.created],
        removed=change.removed,
        cancelled=[conflict_of(r, now) for r in change.cancelled],
        moved=moved_out(change.moved),
    )


@router.delete(
    "",
    response_model=AvailabilityChangeOut,
    responses=problem_responses(404, 409, 422),
)
async def remove_availability(
    provider_id: str,
    start_from: RangeFrom,
    start_before: RangeTo,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    on_conflict: OnConflictQuery = OnConflict.REFUSE,
    cancel_conflicts: CancelConflicts = False,
) -> AvailabilityChangeOut:
    """Withdraw the slots in a range; held or confirmed ones follow `on_conflict`."""
    now = clock.now()
    change = await service.replace_range(
        session,
        settings,
        provider_id,
        start_from,
        start_before,
        [],
        now,
        on_conflict=_policy(on_conflict, cancel_conflicts),
    )
    return _change_out(change, now)


@router.put(
    "",
    response_model=AvailabilityChangeOut,
    responses=problem_responses(404, 409, 422),
)
async def replace_availability(
    provider_id: str,
    data: WindowsIn,
    start_from: RangeFrom,
    start_before: RangeTo,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    on_conflict: OnConflictQuery = OnConflict.REFUSE,
    cancel_conflicts: CancelConflicts = False,
) -> AvailabilityChangeOut:
    """Replace the availability of a range with the given windows; bookings are never dropped."""
    now = clock.now()
    windows = [(w.start_time, w.end_time) for w in data.windows]
    change = await service.replace_range(
        session,
        settings,
        provider_id,
        start_from,
        start_before,
        windows,
        now,
        on_conflict=_policy(on_conflict, cancel_conflicts),
    )
    return _change_out(change, now)


@router.post(
    "/weekly",
    status_code=201,
    response_model=WeeklyOut,
    responses=problem_responses(404, 422),
)
async def publish_weekly_availability(
    provider_id: str, data: WeeklyIn, session: SessionDep, settings: SettingsDep
) -> Response:
    """Create slots from weekly rules read in the provider's own time zone."""
    provider, created = await service.publish_weekly(
        session,
        settings,
        provider_id,
        [rule.parsed() for rule in data.rules],
        data.start_date,
        data.end_date,
    )
    body = weekly_json(data.start_date, data.end_date, provider.timezone, created)
    return Response(body, status_code=201, media_type="application/json")
