"""An owner's bookings as a downloadable .ics answer (API and web pages alike)."""

import asyncio
from datetime import datetime, timedelta

from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from appointments import ics
from appointments.booking import repository
from appointments.booking.repository import Owner

# Every booking that has not ended is in a feed; of those that have, the latest 1,000
# of the past 90 days (a calendar app keeps what it saw before).
CALENDAR_HISTORY = timedelta(days=90)
PAST_LIMIT = 1000


async def calendar_response(
    session: AsyncSession, owner: Owner, name: str, now: datetime
) -> Response:
    rows = await repository.calendar_bookings(
        session, owner, now, now - CALENDAR_HISTORY, PAST_LIMIT
    )
    summaries = [(row, f"Appointment with {row.counterpart}") for row in rows]
    # Off the event loop: a feed of 10^5 bookings is a second of text building.
    body = await asyncio.to_thread(ics.calendar, name, summaries, now)
    return Response(
        body,
        media_type="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="appointments.ics"'},
    )
