"""Booking over HTTP: reserve, confirm, cancel, and the lists of reservations."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from appointments.auth.policy import CurrentUser
from appointments.auth.tokens import Role
from appointments.booking import repository
from appointments.booking.cancel import cancel_reservation
from appointments.booking.confirm import confirm_hold, confirm_hold_autocommit
from appointments.booking.repository import Owner
from appointments.booking.reschedule import reschedule as reschedule_reservation
from appointments.booking.reserve import (
    may_join_in_one_statement,
    reserve_seat_autocommit,
    reserve_slot,
    reserve_slot_autocommit,
)
from appointments.booking.schemas import (
    CancelIn,
    ConfirmIn,
    RescheduleIn,
    ReservationOut,
    ReserveIn,
)
from appointments.clients import service as clients
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import problem_responses
from appointments.idempotency.service import IdempotencyKeyHeader, run_counted, run_once
from appointments.pagination import Keyset, Page, PageRequest, page_request, split_page
from appointments.providers import service as providers
from appointments.scheduling.models import Reservation, ReservationStatus
from appointments.settings import Settings
from appointments.timeparams import AwareQueryTime

client_router = APIRouter(prefix="/clients/{client_id}", tags=["booking"])
provider_router = APIRouter(prefix="/providers/{provider_id}", tags=["booking"])

REPLAY_NOTE = (
    " With an `Idempotency-Key`, a retry replays the first answer (header "
    "`Idempotent-Replayed: true`)."
)


def autocommits(engine: AsyncEngine, idempotency_key: str | None) -> bool:
    """Whether a write can be one statement that commits by itself (PostgreSQL, no key to store)."""
    return idempotency_key is None and engine.dialect.name == "postgresql"


def _plain(data: ReserveIn) -> bool:
    """One seat of a plain slot: what the one statement committing by itself books."""
    return data.appointment_type_id is None and data.seats == 1


def _engine(session: AsyncSession) -> AsyncEngine:
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    return engine


@client_router.post(
    "/reserve",
    status_code=201,
    response_model=ReservationOut,
    responses=problem_responses(404, 409, 422),
    description="Hold a slot for this client; the hold expires unless confirmed in time. "
    "With `appointment_type_id`, hold every slot of an appointment of that type starting at "
    "`slot_id`, buffers included (all or none); checks in order: 404, `too_late_to_book`, "
    "`too_far_ahead`, `slot_unavailable`, `daily_limit_reached`, `too_many_holds`." + REPLAY_NOTE,
)
async def reserve(
    client_id: str,
    data: ReserveIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Hold a slot for this client."""
    return await reserve_answer(session, clock.now(), settings, client_id, data, idempotency_key)


async def reserve_autocommit_answer(
    engine: AsyncEngine, now: datetime, settings: Settings, client_id: str, data: ReserveIn
) -> Response:
    """A plain reserve with no key on PostgreSQL: one statement that commits by itself, one round
    trip; it locks the client itself. No session needed."""

    async def autocommitted() -> tuple[int, ReservationOut]:
        reservation = await reserve_slot_autocommit(
            engine, settings, client_id, str(data.slot_id), now
        )
        return 201, ReservationOut.at(reservation, now)

    return await run_counted("held", autocommitted)


async def reserve_answer(
    session: AsyncSession,
    now: datetime,
    settings: Settings,
    client_id: str,
    data: ReserveIn,
    idempotency_key: str | None,
) -> Response:
    """The reserve's answer from parsed parameters, in the caller's transaction (the
    route's, and fast_paths')."""
    engine = _engine(session)
    if autocommits(engine, idempotency_key) and _plain(data):
        return await reserve_autocommit_answer(engine, now, settings, client_id, data)
    if autocommits(engine, idempotency_key) and may_join_in_one_statement(data.appointment_type_id):
        assert data.appointment_type_id is not None
        held = await reserve_seat_autocommit(
            engine, settings, client_id, data.slot_id, data.appointment_type_id, data.seats, now
        )
        if held is not None:
            seated = held

            async def joined() -> tuple[int, ReservationOut]:
                return 201, ReservationOut.at(seated, now)

            return await run_counted("held", joined)
        # Not the plain join: the step-by-step path below decides, and explains.
    # Locked first: a client's reserves run one at a time (hold limit, idempotency key).
    client = await clients.lock_client(session, client_id)

    async def act() -> tuple[int, ReservationOut]:
        reservation = await reserve_slot(
            session, settings, client, data.slot_id, now, data.appointment_type_id, data.seats
        )
        return 201, ReservationOut.at(reservation, now)

    return await run_once(
        session,
        key=idempotency_key,
        outcome="held",
        scope_id=client,
        operation="reserve",
        request=data.model_dump(exclude_none=True),
        now=now,
        action=act,
    )


@client_router.post(
    "/confirm",
    response_model=ReservationOut,
    responses=problem_responses(404, 409, 422),
    description="Confirm this client's live hold; confirming a confirmed reservation "
    "returns it unchanged." + REPLAY_NOTE,
)
async def confirm(
    client_id: str,
    data: ConfirmIn,
    session: SessionDep,
    clock: ClockDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Confirm a hold."""
    return await confirm_answer(session, clock.now(), client_id, data, idempotency_key)


async def confirm_autocommit_answer(
    engine: AsyncEngine, now: datetime, client_id: str, data: ConfirmIn
) -> Response:
    """A confirm with no key on PostgreSQL: one statement that commits by itself, one round trip."""

    async def autocommitted() -> tuple[int, ReservationOut]:
        reservation = await confirm_hold_autocommit(
            engine, client_id, str(data.reservation_id), now
        )
        return 200, ReservationOut.at(reservation, now)

    return await run_counted("confirmed", autocommitted)


async def confirm_answer(
    session: AsyncSession,
    now: datetime,
    client_id: str,
    data: ConfirmIn,
    idempotency_key: str | None,
) -> Response:
    """The confirm's answer from parsed parameters, in the caller's transaction (the
    route's, and fast_paths')."""
    engine = _engine(session)
    if autocommits(engine, idempotency_key):
        return await confirm_autocommit_answer(engine, now, client_id, data)
    client = await clients.get_client(session, client_id)

    async def act() -> tuple[int, ReservationOut]:
        reservation = await confirm_hold(session, client_id, data.reservation_id, now)
        return 200, ReservationOut.at(reservation, now)

    return await run_once(
        session,
        key=idempotency_key,
        outcome="confirmed",
        scope_id=client.id,
        operation="confirm",
        request=data.model_dump(),
        now=now,
        action=act,
    )


@client_router.post(
    "/reservations/{reservation_id}/cancel",
    response_model=ReservationOut,
    responses=problem_responses(404, 409, 422),
    description="Cancel this client's held or confirmed reservation; its slots become "
    "available again. Cancelling twice returns the same reservation. A client (not an admin) "
    "is refused with 409 `too_late_to_change` inside the type's `change_notice_minutes`."
    + REPLAY_NOTE,
)
async def cancel_as_client(
    client_id: str,
    reservation_id: str,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: CurrentUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Cancel one of this client's reservations."""
    client = await clients.get_client(session, client_id)
    now = clock.now()

    async def act() -> tuple[int, ReservationOut]:
        owner = Owner(client_id=client.id)
        reservation = await cancel_reservation(
            session,
            settings,
            owner,
            reservation_id,
            now,
            by_client=principal.role is Role.CLIENT,
        )
        return 200, ReservationOut.at(reservation, now)

    return await run_once(
        session,
        key=idempotency_key,
        outcome="cancelled",
        scope_id=client.id,
        operation="cancel",
        request={"reservation_id": reservation_id},
        now=now,
        action=act,
    )


@provider_router.post(
    "/reservations/{reservation_id}/cancel",
    response_model=ReservationOut,
    responses=problem_responses(404, 409, 422),
    description="Cancel a held or confirmed reservation of this provider's slots; the slot "
    "becomes available again, or is withdrawn with `remove_slot`. Cancelling twice returns "
    "the same reservation." + REPLAY_NOTE,
)
async def cancel_as_provider(
    provider_id: str,
    reservation_id: str,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    data: CancelIn | None = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Cancel a reservation of this provider."""
    provider = await providers.get_provider(session, provider_id)
    options = data or CancelIn()
    now = clock.now()

    async def act() -> tuple[int, ReservationOut]:
        owner = Owner(provider_id=provider.id)
        reservation = await cancel_reservation(
            session, settings, owner, reservation_id, now, remove_slot=options.remove_slot
        )
        return 200, ReservationOut.at(reservation, now)

    return await run_once(
        session,
        key=idempotency_key,
        outcome="cancelled",
        scope_id=provider.id,
        operation="provider_cancel",
        request={"reservation_id": reservation_id, **options.model_dump()},
        now=now,
        action=act,
    )


RESCHEDULE_NOTE = (
    "Moves a held or confirmed reservation to the start at `slot_id`: same id, status and hold "
    "expiry, same length and buffers; the type's rules apply to the new start and the "
    "reservation does not count against the daily cap for itself. The old slots are freed "
    "and the new ones claimed in one transaction (a move overlapping its own slots works); "
    "when the new ones cannot be had nothing changes."
)


async def _reschedule(
    session: SessionDep,
    settings: SettingsDep,
    owner: Owner,
    reservation_id: str,
    data: RescheduleIn,
    now: datetime,
    idempotency_key: str | None,
    *,
    by_client: bool,
) -> Response:
    """Either party's reschedule: the same rules, its own idempotency scope."""
    scope_id = owner.client_id or owner.provider_id
    assert scope_id is not None

    async def act() -> tuple[int, ReservationOut]:
        reservation = await reschedule_reservation(
            session, settings, owner, reservation_id, data.slot_id, now, by_client=by_client
        )
        return 200, ReservationOut.at(reservation, now)

    return await run_once(
        session,
        key=idempotency_key,
        outcome="rescheduled",
        scope_id=scope_id,
        operation="reschedule" if owner.client_id else "provider_reschedule",
        request={"reservation_id": reservation_id, **data.model_dump()},
        now=now,
        action=act,
    )


@client_router.post(
    "/reservations/{reservation_id}/reschedule",
    response_model=ReservationOut,
    responses=problem_responses(404, 409, 422),
    description=RESCHEDULE_NOTE
    + " A client (not an admin) is refused with 409 `too_late_to_change` inside the type's "
    "`change_notice_minutes`." + REPLAY_NOTE,
)
async def reschedule_as_client(
    client_id: str,
    reservation_id: str,
    data: RescheduleIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: CurrentUser,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Move one of this client's appointments to another start."""
    client = await clients.get_client(session, client_id)
    owner = Owner(client_id=client.id)
    by_client = principal.role is Role.CLIENT
    return await _reschedule(
        session,
        settings,
        owner,
        reservation_id,
        data,
        clock.now(),
        idempotency_key,
        by_client=by_client,
    )


@provider_router.post(
    "/reservations/{reservation_id}/reschedule",
    response_model=ReservationOut,
    responses=problem_responses(404, 409, 422),
    description=RESCHEDULE_NOTE
    + " Providers are not bound by `change_notice_minutes`."
    + REPLAY_NOTE,
)
async def reschedule_as_provider(
    provider_id: str,
    reservation_id: str,
    data: RescheduleIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Move an appointment of this provider to another start."""
    provider = await providers.get_provider(session, provider_id)
    owner = Owner(provider_id=provider.id)
    return await _reschedule(
        session,
        settings,
        owner,
        reservation_id,
        data,
        clock.now(),
        idempotency_key,
        by_client=False,
    )


def _key(reservation: Reservation) -> Keyset:
    return Keyset(at=reservation.start_time, id=reservation.id)


StatusQuery = Annotated[
    ReservationStatus | None,
    Query(description="Only reservations in this status (a run-out hold counts as expired)."),
]
FromQuery = Annotated[
    AwareQueryTime | None,
    Query(alias="from", description="Appointments starting at or after."),
]
ToQuery = Annotated[
    AwareQueryTime | None, Query(alias="to", description="Appointments starting before.")
]


async def _page(
    owner: Owner,
    session: SessionDep,
    clock: ClockDep,
    paging: PageRequest,
    status: ReservationStatus | None,
    start_from: AwareQueryTime | None,
    start_before: AwareQueryTime | None,
) -> Page[ReservationOut]:
    now = clock.now()
    rows = await repository.page(
        session,
        owner,
        status=status,
        start_from=start_from,
        start_before=start_before,
        now=now,
        request=paging,
    )
    items, cursor = split_page(rows, paging, _key)
    return Page[ReservationOut](
        items=[ReservationOut.at(r, now) for r in items], next_cursor=cursor
    )


@client_router.get(
    "/reservations", response_model=Page[ReservationOut], responses=problem_responses(404, 422)
)
async def list_client_reservations(
    client_id: str,
    session: SessionDep,
    clock: ClockDep,
    paging: Annotated[PageRequest, Depends(page_request)],
    status: StatusQuery = None,
    start_from: FromQuery = None,
    start_before: ToQuery = None,
) -> Page[ReservationOut]:
    """List this client's reservations by appointment time."""
    client = await clients.get_client(session, client_id)
    owner = Owner(client_id=client.id)
    return await _page(owner, session, clock, paging, status, start_from, start_before)


@provider_router.get(
    "/reservations", response_model=Page[ReservationOut], responses=problem_responses(404, 422)
)
async def list_provider_reservations(
    provider_id: str,
    session: SessionDep,
    clock: ClockDep,
    paging: Annotated[PageRequest, Depends(page_request)],
    status: StatusQuery = None,
    start_from: FromQuery = None,
    start_before: ToQuery = None,
) -> Page[ReservationOut]:
    """List the reservations of this provider's slots by appointment time."""
    provider = await providers.get_provider(session, provider_id)
    owner = Owner(provider_id=provider.id)
    return await _page(owner, session, clock, paging, status, start_from, start_before)
