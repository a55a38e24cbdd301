"""Confirm: turn a client's live hold into a booking."""

from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from appointments.booking import one_statement, repository
from appointments.booking.errors import (
    ReservationExpired,
    ReservationNotHeld,
)
from appointments.clients import service as clients
from appointments.errors import NotFound
from appointments.ids import parse_id
from appointments.scheduling import holds, outbox, seats, slots
from appointments.scheduling import rules as core
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    Reservation,
    ReservationStatus,
)


async def confirm_hold(
    session: AsyncSession, client_id: str, reservation_id: str, now: datetime
) -> Reservation:
    """Turn the client's live hold into a confirmed booking; confirming again is harmless."""
    client = await clients.get_client(session, client_id)
    reservation_uuid = parse_id(reservation_id, "reservation")
    confirmed = await holds.confirm_if_live(session, reservation_uuid, client.id, now)
    if confirmed is not None:
        if confirmed.session_id is None:
            await slots.mark_confirmed(session, confirmed.id)
        else:  # a seat: its session's slots, under the session's lock
            await seats.lock(session, confirmed.session_id)
            await seats.settle(session, [confirmed.session_id])
        await outbox.record(session, EventType.CONFIRMED, [confirmed.id], now)
        return confirmed

    reservation = await repository.get_of_client(session, reservation_uuid, client.id)
    return _unconfirmed(reservation, reservation_id)


_Found = TypeVar("_Found", Reservation, one_statement.ReservationRow)


def _unconfirmed(reservation: _Found | None, reservation_id: str) -> _Found:
    """Why a confirm changed nothing, for the reservation as it stands."""
    if reservation is None:
        # Another client's reservation is reported exactly like a missing one.
        raise NotFound(f"reservation {reservation_id!r} does not exist")
    if reservation.status == ReservationStatus.CONFIRMED:
        return reservation
    if reservation.status in (ReservationStatus.HELD, ReservationStatus.EXPIRED):
        raise ReservationExpired("the hold ran out; reserve the slot again")
    raise ReservationNotHeld(f"the reservation is {reservation.status}, not held")


def _changed_meanwhile(outcome: one_statement.Confirmation, now: datetime) -> bool:
    """The statement saw a live hold yet confirmed nothing: a cancel, a confirm or the
    hold's deletion (with its provider, say) committed after the statement's snapshot.
    Run again, it sees which, instead of calling the hold run out."""
    found = outcome.reservation
    return (
        not outcome.changed
        and found is not None
        and core.hold_is_live(found.status, found.expires_at, now)
    )


async def confirm_hold_autocommit(
    engine: AsyncEngine, client_id: str, reservation_id: str, now: datetime
) -> one_statement.ReservationRow:
    """PostgreSQL, with no Idempotency-Key: `confirm_hold` as one statement committing by itself."""
    reservation_uuid = parse_id(reservation_id, "reservation")
    client_uuid = parse_id(client_id, "client")

    async def run() -> one_statement.Confirmation:
        return await one_statement.confirm(
            engine, reservation_id=reservation_uuid, client_id=client_uuid, now=now
        )

    outcome = await run()
    if _changed_meanwhile(outcome, now):
        outcome = await run()
    if not outcome.client_known:
        raise NotFound(f"client {client_id!r} does not exist")
    if outcome.changed and outcome.reservation is not None:
        return outcome.reservation
    return _unconfirmed(outcome.reservation, reservation_id)
