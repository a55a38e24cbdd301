"""Calendar feeds over HTTP: an owner's bookings as an .ics answer."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from appointments.booking.repository import Owner
from appointments.calendar import export
from appointments.clients import service as clients
from appointments.deps import ClockDep, SessionDep
from appointments.errors import problem_responses
from appointments.providers import service as providers

client_router = APIRouter(prefix="/clients/{client_id}", tags=["booking"])
provider_router = APIRouter(prefix="/providers/{provider_id}", tags=["booking"])


CALENDAR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An RFC 5545 calendar of confirmed (and cancelled) bookings.",
        "content": {"text/calendar": {"schema": {"type": "string"}}},
    },
    **problem_responses(404),
}


@client_router.get("/reservations.ics", response_class=Response, responses=CALENDAR_RESPONSES)
async def client_calendar(client_id: str, session: SessionDep, clock: ClockDep) -> Response:
    """This client's confirmed bookings as an .ics calendar (cancelled ones marked)."""
    client = await clients.get_client(session, client_id)
    owner = Owner(client_id=client.id)
    return await export.calendar_response(session, owner, "My appointments", clock.now())


@provider_router.get("/reservations.ics", response_class=Response, responses=CALENDAR_RESPONSES)
async def provider_calendar(provider_id: str, session: SessionDep, clock: ClockDep) -> Response:
    """This provider's confirmed bookings as an .ics calendar (cancelled ones marked)."""
    provider = await providers.get_provider(session, provider_id)
    name = f"{provider.name}: appointments"
    return await export.calendar_response(
        session, Owner(provider_id=provider.id), name, clock.now()
    )
