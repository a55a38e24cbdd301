"""An owner's bookings as a downloadable .ics answer (API and web pages alike)."""

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from appointments import ics
from appointments.booking import repository, sessions
from appointments.booking.repository import Owner
from appointments.scheduling.models import ReservationStatus

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
    if owner.provider_id is not None:
        summaries = by_session(rows)
    else:
        summaries = [(row, _summary(row)) for row in rows]
    # Off the event loop: a feed of 10^5 bookings is a second of text building.
    body = await asyncio.to_thread(ics.calendar, name, summaries, now)
    return Response(
        body,
        media_type="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="appointments.ics"'},
    )


def _summary(row: Any) -> str:
    if row.session_id is None:
        return f"Appointment with {row.counterpart}"
    return f"Group session with {row.counterpart}"


@dataclass(frozen=True)
class SessionEntry:
    """A group session as one event of the provider's feed (UID: the session's id)."""

    id: uuid.UUID
    status: str
    start_time: datetime
    end_time: datetime


def by_session(rows: Sequence[Any]) -> list[tuple[ics.Booked, str]]:
    """The provider's feed: a plain booking is one event; the seats of a group session
    are one event for the session (confirmed while any seat is), naming its clients."""
    return [
        _session(group) if group[0].session_id is not None else (group[0], _summary(group[0]))
        for group in sessions.gathered(rows, lambda row: row.session_id)
    ]


def _session(seated: Sequence[Any]) -> tuple[ics.Booked, str]:
    live = [r for r in seated if r.status == ReservationStatus.CONFIRMED]
    first = seated[0]
    status = ReservationStatus.CONFIRMED if live else ReservationStatus.CANCELLED
    names = ", ".join(sorted(r.counterpart for r in live or seated))
    summary = f"Group session: {sum(r.seats for r in live)} seat(s), {names}"
    return SessionEntry(first.session_id, status, first.start_time, first.end_time), summary
