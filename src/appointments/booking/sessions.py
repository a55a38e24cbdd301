"""Seats in group sessions: a reserve of a group type joins the open session at its
start, or opens one by claiming its slots as any appointment does.

Checks in the contract's order: the type's own (notice and horizon, the slots, the
daily cap for a new session, the hold limit), then `session_full`, then
`already_booked`. The seats are taken by one conditional UPDATE of the session's row
(`scheduling.seats.take`), which the CHECK on `seats_taken` backs: never more live
seats than the capacity, whatever the concurrency.
"""

import uuid
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types.rules import BookingRules
from appointments.booking import spans
from appointments.booking.errors import AlreadyBooked, SlotUnavailable
from appointments.scheduling import holds, outbox, seats, slots
from appointments.scheduling import rules as core
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    GroupSession,
    Reservation,
    ReservationStatus,
    SlotRecord,
)
from appointments.settings import Settings


async def hold_seats(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    anchor: SlotRecord,
    rules: BookingRules,
    zone: str,
    now: datetime,
    expires_at: datetime,
    asked: int,
    *,
    check_limit: bool,
) -> Reservation:
    """Hold `asked` seats of the group type `rules` describe at `anchor` for the client."""
    assert rules.type_id is not None
    rules.check_start(anchor.start_time, now)
    # The open session's run-out seats are written down first: their places are free.
    await holds.expire_run_out_seats_at(
        session, anchor.provider_id, rules.type_id, anchor.start_time, now
    )
    place = await _join(session, settings, client_id, anchor, rules, now, asked, check_limit)
    if place is None:
        try:
            place = await _open(
                session,
                settings,
                client_id,
                anchor,
                rules,
                zone,
                now,
                expires_at,
                asked,
                check_limit=check_limit,
            )
        except SlotUnavailable:
            # A rival may have opened the session meanwhile (its slots are no longer
            # free, and a fresh statement sees it): then this seat joins it.
            place = await _join(
                session, settings, client_id, anchor, rules, now, asked, check_limit
            )
            if place is None:
                raise
    reservation = Reservation(
        id=uuid.uuid4(),
        slot_id=place.slot_id,
        provider_id=place.provider_id,
        client_id=client_id,
        appointment_type_id=rules.type_id,
        status=ReservationStatus.HELD,
        start_time=place.start_time,
        end_time=place.end_time,
        occupied_start=place.occupied_start,
        occupied_end=place.occupied_end,
        created_at=now,
        expires_at=expires_at,
        seats=asked,
        session_id=place.id,
    )
    session.add(reservation)
    await session.flush()
    await seats.settle(session, [place.id])
    await outbox.record(session, EventType.HELD, [reservation.id], now)
    return reservation


async def _join(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    anchor: SlotRecord,
    rules: BookingRules,
    now: datetime,
    asked: int,
    check_limit: bool,
) -> GroupSession | None:
    """Take seats in the open session of the type at the anchor (locked), or None when
    there is none."""
    assert rules.type_id is not None
    place = await seats.open_at(
        session, anchor.provider_id, rules.type_id, anchor.start_time, lock=True
    )
    if place is None:
        return None
    if check_limit:
        held = await holds.count_live_holds(session, client_id, now)
        core.check_hold_limit(held, settings.max_holds_per_client)
    if await seats.take(session, place.id, asked) is None:
        core.check_session_has_room(place.capacity - place.seats_taken, asked)
    if await _has_seat(session, place.id, client_id, now):
        raise AlreadyBooked("the client already has a seat in this session")
    return place


async def _has_seat(
    session: AsyncSession, session_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> bool:
    query = select(
        exists().where(
            Reservation.session_id == session_id,
            Reservation.client_id == client_id,
            holds.is_live(now),
        )
    )
    return bool(await session.scalar(query))


async def _open(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    anchor: SlotRecord,
    rules: BookingRules,
    zone: str,
    now: datetime,
    expires_at: datetime,
    asked: int,
    *,
    check_limit: bool,
) -> GroupSession:
    """Open a session at the anchor: claim its slots as any appointment (all or none),
    then take its first seats."""
    assert rules.type_id is not None
    claim = await spans.claim_span(
        session, settings, client_id, anchor, rules, zone, now, check_limit=check_limit
    )
    core.check_session_has_room(rules.capacity, asked)
    place = GroupSession(
        id=uuid.uuid4(),
        provider_id=anchor.provider_id,
        appointment_type_id=rules.type_id,
        slot_id=anchor.id,
        start_time=claim.span.start,
        end_time=claim.span.end,
        occupied_start=claim.span.occupied_start,
        occupied_end=claim.span.occupied_end,
        capacity=rules.capacity,
        seats_taken=asked,
        created_at=now,
    )
    with spans.slot_taken_meanwhile("a slot of the session was taken at the same moment"):
        session.add(place)
        await session.flush()
        await seats.link(session, place.id, anchor.provider_id, claim.slot_ids)
    await slots.occupy(session, claim.slot_ids, expires_at)
    return place
