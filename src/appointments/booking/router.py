from fastapi import APIRouter

from appointments.booking import service
from appointments.booking.schemas import ConfirmIn, ReservationOut, ReserveIn
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import problem_responses

router = APIRouter(prefix="/clients/{client_id}", tags=["booking"])


@router.post(
    "/reserve",
    status_code=201,
    response_model=ReservationOut,
    responses=problem_responses(404, 409, 422),
)
async def reserve(
    client_id: str, data: ReserveIn, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> ReservationOut:
    """Hold a slot for this client; the hold expires unless confirmed in time."""
    now = clock.now()
    reservation = await service.reserve_slot(session, settings, client_id, data.slot_id, now)
    return ReservationOut.at(reservation, now)


@router.post("/confirm", response_model=ReservationOut, responses=problem_responses(404, 409, 422))
async def confirm(
    client_id: str, data: ConfirmIn, session: SessionDep, clock: ClockDep
) -> ReservationOut:
    """Confirm this client's live hold; confirming a confirmed reservation returns it again."""
    now = clock.now()
    reservation = await service.confirm_hold(session, client_id, data.reservation_id, now)
    return ReservationOut.at(reservation, now)
