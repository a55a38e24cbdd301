from fastapi import APIRouter

from appointments.booking import sweeper
from appointments.booking.schemas import ExpiredCount
from appointments.deps import ClockDep, SessionDep

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/expire-reservations", response_model=ExpiredCount)
async def expire_reservations(session: SessionDep, clock: ClockDep) -> ExpiredCount:
    """Persist every hold that has run out now; answers how many were expired."""
    return ExpiredCount(expired=await sweeper.expire_stale_holds(session, clock.now()))
