"""An owner's bookings as a downloadable .ics answer (API and web pages alike)."""

from datetime import datetime, timedelta

from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.booking import repository
from appointments.booking.repository import Owner
from appointments.calendar import ics

# A year back is plenty for a calendar feed; the cap bounds the answer's size.
CALENDAR_HISTORY = timedelta(days=365)
CALENDAR_LIMIT = 5000


async def calendar_response(
    session: AsyncSession, owner: Owner, name: str, now: datetime
) -> Response:
    bookings = await repository.bookings_with_counterpart(
        session, owner, now - CALENDAR_HISTORY, CALENDAR_LIMIT
    )
    summaries = [(r, f"Appointment with {other}") for r, other in bookings]
    return Response(
        ics.calendar(name, summaries, now),
        media_type="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="appointments.ics"'},
    )
