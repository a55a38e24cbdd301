from typing import Annotated

from fastapi import APIRouter, Depends, Query

from appointments.availability import service
from appointments.availability.models import Slot
from appointments.availability.schemas import SlotFilter, SlotOut, WindowIn, WindowOut
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import problem_responses
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page
from appointments.timeparams import AwareQueryTime

router = APIRouter(prefix="/providers/{provider_id}/availability", tags=["availability"])


@router.post(
    "",
    status_code=201,
    response_model=WindowOut,
    responses=problem_responses(404, 422),
)
async def publish_availability(
    provider_id: str, window: WindowIn, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> WindowOut:
    """Cut a window into slots; only slots the provider does not have yet are created."""
    created = await service.publish_window(
        session, settings, provider_id, window.start_time, window.end_time
    )
    now = clock.now()
    return WindowOut(
        start_time=window.start_time,
        end_time=window.end_time,
        slots=[SlotOut.at(slot, now) for slot in created],
    )


def _slot_key(slot: Slot) -> Keyset:
    return Keyset(at=slot.start_time, id=slot.id)


@router.get("", response_model=Page[SlotOut], responses=problem_responses(404, 422))
async def list_availability(
    provider_id: str,
    session: SessionDep,
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
) -> Page[SlotOut]:
    """List a provider's slots by start time; by default only the bookable ones."""
    now = clock.now()
    rows = await service.list_slots(
        session,
        settings,
        provider_id,
        status=status,
        start_from=start_from,
        start_before=start_before,
        now=now,
        request=paging,
    )
    items, cursor = split_page(rows, paging, _slot_key)
    return Page[SlotOut](items=[SlotOut.at(slot, now) for slot in items], next_cursor=cursor)
