from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from appointments.deps import ClockDep, ReadSessionDep, SessionDep
from appointments.errors import problem_responses
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page
from appointments.providers import service
from appointments.providers.models import Provider
from appointments.providers.schemas import ProviderIn, ProviderOut

router = APIRouter(prefix="/providers", tags=["providers"])


def _key(provider: Provider) -> Keyset:
    return Keyset(at=provider.created_at, id=provider.id)


@router.post("", status_code=201, response_model=ProviderOut, responses=problem_responses(422))
async def create_provider(data: ProviderIn, session: SessionDep, clock: ClockDep) -> Provider:
    """Create a provider."""
    return await service.create_provider(session, data, clock.now())


@router.get("", response_model=Page[ProviderOut], responses=problem_responses(422))
async def list_providers(
    session: ReadSessionDep, paging: Annotated[PageRequest, Depends(page_request)]
) -> Page[ProviderOut]:
    """List providers, oldest first."""
    rows = await service.list_providers(session, paging)
    items, cursor = split_page(rows, paging, _key)
    return Page[ProviderOut](
        items=[ProviderOut.model_validate(p) for p in items], next_cursor=cursor
    )


@router.get("/{provider_id}", response_model=ProviderOut, responses=problem_responses(404))
async def get_provider(provider_id: str, session: ReadSessionDep) -> Provider:
    """Get one provider."""
    return await service.get_provider(session, provider_id)


@router.put("/{provider_id}", response_model=ProviderOut, responses=problem_responses(404, 422))
async def replace_provider(
    provider_id: str, data: ProviderIn, session: SessionDep, clock: ClockDep
) -> Provider:
    """Replace a provider; omitted optional fields take their defaults."""
    return await service.replace_provider(session, provider_id, data, clock.now())


@router.delete(
    "/{provider_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(404, 409),
)
async def delete_provider(
    provider_id: str,
    session: SessionDep,
    clock: ClockDep,
    cancel_conflicts: Annotated[
        bool, Query(description="Delete even with future held or confirmed bookings.")
    ] = False,
) -> Response:
    """Delete a provider and its slots; 409 (listing them) while it has future bookings."""
    await service.delete_provider(
        session, provider_id, clock.now(), cancel_conflicts=cancel_conflicts
    )
    return Response(status_code=204)
