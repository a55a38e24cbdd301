from typing import Annotated

from fastapi import APIRouter, Depends, Response

from appointments.clients import service
from appointments.clients.models import Client
from appointments.clients.schemas import ClientIn, ClientOut
from appointments.deps import ClockDep, SessionDep
from appointments.errors import problem_responses
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page

router = APIRouter(prefix="/clients", tags=["clients"])


def _key(client: Client) -> Keyset:
    return Keyset(at=client.created_at, id=client.id)


@router.post("", status_code=201, response_model=ClientOut, responses=problem_responses(422))
async def create_client(data: ClientIn, session: SessionDep, clock: ClockDep) -> Client:
    """Create a client."""
    return await service.create_client(session, data, clock.now())


@router.get("", response_model=Page[ClientOut], responses=problem_responses(422))
async def list_clients(
    session: SessionDep, paging: Annotated[PageRequest, Depends(page_request)]
) -> Page[ClientOut]:
    """List clients, oldest first."""
    rows = await service.list_clients(session, paging)
    items, cursor = split_page(rows, paging, _key)
    return Page[ClientOut](items=[ClientOut.model_validate(c) for c in items], next_cursor=cursor)


@router.get("/{client_id}", response_model=ClientOut, responses=problem_responses(404))
async def get_client(client_id: str, session: SessionDep) -> Client:
    """Get one client."""
    return await service.get_client(session, client_id)


@router.put("/{client_id}", response_model=ClientOut, responses=problem_responses(404, 422))
async def replace_client(
    client_id: str, data: ClientIn, session: SessionDep, clock: ClockDep
) -> Client:
    """Replace a client; omitted optional fields take their defaults."""
    return await service.replace_client(session, client_id, data, clock.now())


@router.delete(
    "/{client_id}", status_code=204, response_class=Response, responses=problem_responses(404)
)
async def delete_client(client_id: str, session: SessionDep, clock: ClockDep) -> Response:
    """Delete a client; the slots of its held or confirmed reservations become available."""
    await service.delete_client(session, client_id, clock.now())
    return Response(status_code=204)
