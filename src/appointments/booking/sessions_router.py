"""Group sessions over HTTP: a provider's sessions, one session, cancel a session."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from appointments.booking import sessions
from appointments.booking.router import REPLAY_NOTE, FromQuery, ToQuery
from appointments.booking.schemas import ReservationOut, SessionOut
from appointments.deps import ClockDep, SessionDep
from appointments.errors import problem_responses
from appointments.idempotency.service import IdempotencyKeyHeader, run_once
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page
from appointments.providers import service as providers

router = APIRouter(prefix="/providers/{provider_id}", tags=["sessions"])


def session_out(view: sessions.SessionView, now: datetime) -> SessionOut:
    found = view.session
    return SessionOut(
        id=found.id,
        provider_id=found.provider_id,
        appointment_type_id=found.appointment_type_id,
        slot_id=found.slot_id,
        start_time=found.start_time,
        end_time=found.end_time,
        capacity=found.capacity,
        seats_taken=view.seats_taken(now),
        reservations=[ReservationOut.at(r, now) for r in view.reservations],
    )


def _key(view: sessions.SessionView) -> Keyset:
    return Keyset(at=view.session.start_time, id=view.session.id)


@router.get("/sessions", response_model=Page[SessionOut], responses=problem_responses(404, 422))
async def list_sessions(
    provider_id: str,
    session: SessionDep,
    clock: ClockDep,
    paging: Annotated[PageRequest, Depends(page_request)],
    start_from: FromQuery = None,
    start_before: ToQuery = None,
) -> Page[SessionOut]:
    """List this provider's live group sessions (one live seat at least) by start time,
    each with its live seats."""
    provider = await providers.get_provider(session, provider_id)
    now = clock.now()
    rows = await sessions.page_of_provider(
        session,
        provider.id,
        start_from=start_from,
        start_before=start_before,
        now=now,
        request=paging,
    )
    items, cursor = split_page(rows, paging, _key)
    return Page(items=[session_out(view, now) for view in items], next_cursor=cursor)


@router.get(
    "/sessions/{session_id}", response_model=SessionOut, responses=problem_responses(404, 422)
)
async def get_session(
    provider_id: str, session_id: str, session: SessionDep, clock: ClockDep
) -> SessionOut:
    """One group session of this provider with its live seats (none once it has ended)."""
    provider = await providers.get_provider(session, provider_id)
    now = clock.now()
    return session_out(await sessions.get_of_provider(session, provider.id, session_id, now), now)


@router.post(
    "/sessions/{session_id}/cancel",
    response_model=SessionOut,
    responses=problem_responses(404, 409, 422),
    description="Cancel every live seat of the session: each client is told, as for any "
    "cancel, and its slots are free again. Cancelling an ended session changes nothing."
    + REPLAY_NOTE,
)
async def cancel_session(
    provider_id: str,
    session_id: str,
    session: SessionDep,
    clock: ClockDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Cancel a whole group session."""
    provider = await providers.get_provider(session, provider_id)
    now = clock.now()

    async def act() -> tuple[int, SessionOut]:
        view = await sessions.cancel(session, provider.id, session_id, now)
        return 200, session_out(view, now)

    return await run_once(
        session,
        key=idempotency_key,
        outcome="cancelled",
        scope_id=provider.id,
        operation="cancel_session",
        request={"session_id": session_id},
        now=now,
        action=act,
    )
