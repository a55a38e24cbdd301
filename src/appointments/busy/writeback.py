"""Bookings written to the provider's CalDAV calendar (`write_bookings`).

Every change of a booking is an event (`scheduling.events`, the outbox); the
notifications worker turns each into one delivery per calendar that takes bookings,
with its retries and leases, and asks this module what to write. The answer is the
booking's state *now*, read when the attempt begins, not the event's snapshot: one
calendar object per booking, named and identified (UID) as its mail invite, put whole
or deleted. So a retry, a reconnect or writes arriving out of order all end in the
same object, never a second copy. A weekly series is one object (one recurring event,
its unbooked weeks excluded, its moved weeks overridden), like its invite.

The service reads its own objects back from the calendar like any others, and
`busy.ical` ignores them (their UIDs end in `@appointments`): a booking never blocks
its own time.
"""

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from appointments import ics
from appointments.appointment_types.models import AppointmentType
from appointments.busy import secrets
from appointments.busy.dav import DavCalendar
from appointments.busy.fetch import FetchError
from appointments.busy.models import Calendar, CalendarKind
from appointments.clients.models import Client
from appointments.providers.models import Provider
from appointments.scheduling import rules
from appointments.scheduling.models import Reservation, ReservationStatus, Series
from appointments.settings import Settings


@dataclass(frozen=True)
class Write:
    """One attempt: put `text` as the object `name`, or delete it when `text` is None."""

    url: str
    auth: tuple[str, str] | None
    name: str
    text: str | None
    # Why the calendar's stored password cannot be used: the attempt fails so.
    problem: str | None = None


async def plan(
    session: AsyncSession, settings: Settings, calendar_id: uuid.UUID, reservation_id: uuid.UUID
) -> Write | None:
    """What to write for the booking now; None when nothing is to be done (the calendar
    no longer takes bookings, or the booking was never confirmed: never written)."""
    calendar = await session.get(Calendar, calendar_id)
    booking = await session.get(Reservation, reservation_id)
    if calendar is None or booking is None:
        return None
    if not calendar.write_bookings or calendar.kind != CalendarKind.CALDAV:
        return None
    login = secrets.credentials(settings, calendar)
    if booking.series_id is not None:
        found = await _series(session, booking.series_id)
        if found is None:
            return None
        name, text = found
    else:
        if booking.confirmed_at is None:
            return None
        name = str(booking.id)
        text = await _one(session, booking) if _stands(booking) else None
    return Write(calendar.url, login.auth, name, text, login.problem)


async def send(settings: Settings, write: Write) -> None:
    """Make the attempt (raises `fetch.FetchError` with the reason when it fails)."""
    if write.problem is not None:
        raise FetchError(write.problem)
    calendar = DavCalendar(settings, write.url, write.auth)
    if write.text is None:
        await calendar.delete(write.name)
    else:
        await calendar.put(write.name, write.text)


def _stands(booking: Reservation) -> bool:
    return booking.status == ReservationStatus.CONFIRMED


async def _words(session: AsyncSession, booking: Reservation) -> tuple[str, str]:
    """The event's summary and description, for the provider's eyes."""
    client = await session.get(Client, booking.client_id)
    kind = (
        await session.get(AppointmentType, booking.appointment_type_id)
        if booking.appointment_type_id
        else None
    )
    who = client.name if client else "a client"
    what = kind.name if kind else "Appointment"
    contact = f" <{client.email}>" if client and client.email else ""
    return f"{what} with {who}", f"Booked by {who}{contact} through appointments."


async def _one(session: AsyncSession, booking: Reservation) -> str:
    summary, description = await _words(session, booking)
    return ics.stored_booking(
        uid=ics.booking_uid(booking.id),
        sequence=booking.revision,
        start=booking.start_time,
        end=booking.end_time,
        summary=summary,
        description=description,
        stamp=booking.confirmed_at or booking.created_at,
    )


async def _series(session: AsyncSession, series_id: uuid.UUID) -> tuple[str, str | None] | None:
    """The series' object: (name, text), text None when no week stands any more; None
    when no week was ever confirmed (nothing was written)."""
    series = await session.get(Series, series_id)
    if series is None:
        return None
    weeks = (
        await session.scalars(
            select(Reservation)
            .where(Reservation.series_id == series_id)
            .order_by(Reservation.start_time)
        )
    ).all()
    if not any(week.confirmed_at is not None for week in weeks):
        return None
    name = f"series-{series_id}"
    standing = [week for week in weeks if _stands(week)]
    if not standing:
        return name, None
    provider = await session.get(Provider, series.provider_id)
    zone = provider.timezone if provider else "UTC"
    booked = {week.series_start for week in standing}
    excluded = [
        k
        for k in range(series.count)
        if rules.same_time_weeks_later(series.first_start, zone, k * series.interval_weeks)
        not in booked
    ]
    first = standing[0]
    summary, description = await _words(session, first)
    weekly = ics.Weekly(
        uid=ics.series_uid(series_id),
        # Raised by every move and every cancel of one of its weeks.
        sequence=sum(week.revision for week in weeks)
        + sum(week.status == ReservationStatus.CANCELLED for week in weeks),
        first_start=series.first_start,
        duration=first.end_time - first.start_time,
        zone=zone,
        interval_weeks=series.interval_weeks,
        count=series.count,
        excluded_weeks=excluded,
        summary=summary,
        stamp=series.created_at,
    )
    moved = [
        ics.Moved(week.series_start, week.start_time, week.end_time)
        for week in standing
        if week.series_start is not None and week.series_start != week.start_time
    ]
    return name, ics.stored_series(weekly, moved, description)
