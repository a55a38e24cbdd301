"""Statements on group sessions and their seats that every domain composes: find and
lock the open session at a start, take seats, give them back, and keep the session's
slots showing what its seats are.

A session occupies its slots itself (`ReservationSlot.session_id`); its seats are
reservations with `session_id`. `seats_taken` is moved only by conditional UPDATEs of
the session's row, so the CHECK `seats_taken <= capacity` is the database's own
refusal of one seat too many, whatever the concurrency (`take`).

Lock order, as everywhere: reservation rows, then session rows, then slot rows. A
seat that ends is written down first (its reservation row), then `leave` takes its
session's row; a seat is taken under the session's row, and the slots are written
after it. So every change to a session's slots happens under its row lock, and
`settle` (a statement of its own, after that lock) sees every seat committed before.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Uuid, bindparam, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.scheduling import rules
from appointments.scheduling.models import GroupSession, Reservation, ReservationSlot


def open_of_type(
    provider_id: uuid.UUID, type_id: uuid.UUID, starting: ColumnElement[bool]
) -> tuple[ColumnElement[bool], ...]:
    """The conditions that pick the type's open sessions (one seat taken at least)
    whose start meets `starting`: one at a start, or every one after a moment."""
    return (
        GroupSession.provider_id == provider_id,
        GroupSession.appointment_type_id == type_id,
        GroupSession.seats_taken > 0,
        starting,
    )


async def open_at(
    session: AsyncSession, provider_id: uuid.UUID, type_id: uuid.UUID, start: datetime
) -> GroupSession | None:
    """The open session of the type at `start`, read again and locked."""
    query = (
        select(GroupSession)
        .where(*open_of_type(provider_id, type_id, GroupSession.start_time == start))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one_or_none()


async def lock(session: AsyncSession, session_id: uuid.UUID) -> GroupSession | None:
    """The session, read again and locked until the transaction ends."""
    query = (
        select(GroupSession)
        .where(GroupSession.id == session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).one_or_none()


async def take(session: AsyncSession, session_id: uuid.UUID, seats: int) -> int | None:
    """Take `seats` seats of the open session if, and only if, that many are left (one
    conditional UPDATE: `rules.session_has_room`); return the seats left after, or None
    when refused (the session is full, or it has just ended)."""
    result = await session.execute(
        update(GroupSession)
        .where(
            GroupSession.id == session_id,
            GroupSession.seats_taken > 0,
            text(rules.session_has_room("group_sessions")).bindparams(seats=seats),
        )
        .values(seats_taken=GroupSession.seats_taken + seats)
        .returning(GroupSession.capacity - GroupSession.seats_taken)
        .execution_options(synchronize_session=False)
    )
    left = result.scalar_one_or_none()
    return None if left is None else int(left)


async def leave(session: AsyncSession, reservation_ids: Sequence[uuid.UUID]) -> Sequence[uuid.UUID]:
    """These reservations (ended, or moving away) give their seats back, set-based: each
    session's count falls by their seats; a session left with none gives up its slots,
    returned for the caller to release; the others' slots are settled. Plain
    reservations among them are left alone."""
    if not reservation_ids:
        return []
    ids = list(reservation_ids)
    given_back = (
        select(func.sum(Reservation.seats))
        .where(Reservation.session_id == GroupSession.id, Reservation.id.in_(ids))
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            update(GroupSession)
            .where(
                GroupSession.id.in_(
                    select(Reservation.session_id).where(
                        Reservation.id.in_(ids), Reservation.session_id.is_not(None)
                    )
                )
            )
            .values(seats_taken=GroupSession.seats_taken - given_back)
            .returning(GroupSession.id, GroupSession.seats_taken)
            .execution_options(synchronize_session=False)
        )
    ).all()
    ended = [session_id for session_id, taken in rows if taken == 0]
    open_ones = [session_id for session_id, taken in rows if taken > 0]
    await settle(session, open_ones)
    if not ended:
        return []
    freed = await session.scalars(
        delete(ReservationSlot)
        .where(ReservationSlot.session_id.in_(ended))
        .returning(ReservationSlot.slot_id)
        .execution_options(synchronize_session=False)
    )
    return freed.all()


async def unlink_all(session: AsyncSession, session_id: uuid.UUID) -> Sequence[uuid.UUID]:
    """The (locked) session gives up every slot it occupies, its seats kept (it is being
    moved); return those slots."""
    freed = await session.scalars(
        delete(ReservationSlot)
        .where(ReservationSlot.session_id == session_id)
        .returning(ReservationSlot.slot_id)
        .execution_options(synchronize_session=False)
    )
    return freed.all()


# A session slot's seats: those of the session occupying it, written down as `status`.
_SEATS_OF_SLOT = (
    "FROM reservations AS r JOIN reservation_slots AS l ON r.session_id = l.session_id"
    " WHERE l.slot_id = slots.id AND r.status = '{status}'"
)
_SETTLED = text(
    f"""
UPDATE slots
   SET status = CASE WHEN EXISTS (SELECT 1 {_SEATS_OF_SLOT.format(status="confirmed")})
                     THEN 'confirmed' ELSE 'reserved' END,
       hold_expires_at = CASE WHEN EXISTS (SELECT 1 {_SEATS_OF_SLOT.format(status="confirmed")})
                     THEN NULL
                     ELSE (SELECT max(r.expires_at) {_SEATS_OF_SLOT.format(status="held")}) END
 WHERE id IN (SELECT slot_id FROM reservation_slots WHERE session_id IN :sessions)
"""
).bindparams(bindparam("sessions", expanding=True, type_=Uuid()))


async def settle(session: AsyncSession, session_ids: Sequence[uuid.UUID]) -> None:
    """Write the slots of these open sessions as their seats stand: `confirmed` once any
    seat is, else `reserved` until the last held seat's expiry (so the slots read free
    the moment every hold has run out, swept or not). Call under the sessions' row locks."""
    if session_ids:
        await session.execute(_SETTLED, {"sessions": list(session_ids)})


async def link(
    session: AsyncSession,
    session_id: uuid.UUID,
    provider_id: uuid.UUID,
    slot_ids: Sequence[uuid.UUID],
) -> None:
    """Record the slots the session occupies; the key on `slot_id` refuses a slot another
    occupant holds, whatever the caller checked before."""
    await session.execute(
        insert(ReservationSlot),
        [
            {"slot_id": slot_id, "session_id": session_id, "provider_id": provider_id}
            for slot_id in slot_ids
        ],
    )


async def resize(
    session: AsyncSession,
    provider_id: uuid.UUID,
    type_id: uuid.UUID,
    capacity: int,
    now: datetime,
) -> Sequence[uuid.UUID]:
    """Give the type's open sessions starting after `now` the new capacity; return those
    with more seats taken than it (left unchanged; the caller refuses and rolls back).
    Run-out seats should be written down first (`holds.expire_run_out_seats_at`)."""
    future = open_of_type(provider_id, type_id, GroupSession.start_time > now)
    await session.execute(
        update(GroupSession)
        .where(*future, GroupSession.seats_taken <= capacity)
        .values(capacity=capacity)
        .execution_options(synchronize_session=False)
    )
    crowded = select(GroupSession.id).where(*future, GroupSession.seats_taken > capacity)
    return (await session.scalars(crowded.order_by(GroupSession.start_time))).all()
