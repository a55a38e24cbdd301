"""Seats in group sessions: a reserve of a group type joins the open session at its
start, or opens one by claiming its slots as any appointment does.

Checks in the contract's order: the type's own (notice and horizon, the slots, the
daily cap for a new session, the hold limit), then `session_full`, then
`already_booked`. The seats are taken by one conditional UPDATE of the session's row
(`scheduling.seats.take`), which the CHECK on `seats_taken` backs: never more live
seats than the capacity, whatever the concurrency.
"""

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg
from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from appointments.appointment_types.rules import BookingRules
from appointments.booking import spans, terms
from appointments.booking.errors import AlreadyBooked, SessionFull, SlotUnavailable
from appointments.db import violates
from appointments.errors import DomainError, NotFound
from appointments.ids import parse_id
from appointments.pagination import PageRequest
from appointments.scheduling import holds, outbox, seats, slots
from appointments.scheduling import rules as core
from appointments.scheduling.errors import DailyLimitReached, TooFarAhead, TooLateToBook
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    ONE_SEAT_PER_CLIENT,
    GroupSession,
    Reservation,
    ReservationStatus,
    SlotRecord,
)
from appointments.settings import Settings


@contextmanager
def one_seat_per_client() -> Iterator[None]:
    """The unique index refusing a client's second live seat in a session (a rival
    request of the same client committed first): 409 `already_booked`, not 500."""
    try:
        yield
    except (IntegrityError, asyncpg.UniqueViolationError) as exc:
        if violates(exc, ONE_SEAT_PER_CLIENT):
            raise AlreadyBooked("the client already has a seat in this session") from exc
        raise


@dataclass(frozen=True)
class Seating:
    """Who takes seats of a group type, how many, and on which terms: what each step
    of placing them (join the open session, or open one) passes down."""

    settings: Settings
    client_id: uuid.UUID
    rules: BookingRules
    zone: str
    now: datetime
    expires_at: datetime | None  # None: confirmed seats (a move of confirmed ones)
    asked: int
    check_limit: bool
    series_id: uuid.UUID | None = None

    @property
    def type_id(self) -> uuid.UUID:
        assert self.rules.type_id is not None
        return self.rules.type_id


async def hold_seats(session: AsyncSession, seating: Seating, anchor: SlotRecord) -> Reservation:
    """Hold the seats at `anchor` for the client (as an occurrence of the series when
    `seating` names one)."""
    rules, now, series_id = seating.rules, seating.now, seating.series_id
    rules.check_start(anchor.start_time, now)
    # The open session's run-out seats are written down first: their places are free.
    await holds.expire_run_out_seats_at(
        session, anchor.provider_id, seating.type_id, anchor.start_time, now
    )
    place = await _place(session, seating, anchor)
    reservation = Reservation(
        id=uuid.uuid4(),
        slot_id=place.slot_id,
        provider_id=place.provider_id,
        client_id=seating.client_id,
        appointment_type_id=rules.type_id,
        status=ReservationStatus.HELD,
        start_time=place.start_time,
        end_time=place.end_time,
        occupied_start=place.occupied_start,
        occupied_end=place.occupied_end,
        created_at=now,
        expires_at=seating.expires_at,
        seats=seating.asked,
        session_id=place.id,
        series_id=series_id,
        series_start=None if series_id is None else place.start_time,
    )
    with one_seat_per_client():
        session.add(reservation)
        await session.flush()
    await seats.settle(session, [place.id])
    await outbox.record(session, EventType.HELD, [reservation.id], now)
    return reservation


_Row = TypeVar("_Row")


def gathered(
    rows: Sequence[_Row], session_of: Callable[[_Row], uuid.UUID | None]
) -> list[list[_Row]]:
    """Rows of bookings in their order, the seats of each group session gathered where
    its first one stands: a plain booking is a group of one (the provider's week, its
    calendar feed)."""
    groups: list[list[_Row]] = []
    of_session: dict[uuid.UUID, list[_Row]] = {}
    for row in rows:
        session_id = session_of(row)
        if session_id is None:
            groups.append([row])
        elif session_id in of_session:
            of_session[session_id].append(row)
        else:
            of_session[session_id] = [row]
            groups.append(of_session[session_id])
    return groups


# What may refuse one occurrence of a series; anything else fails the whole request.
OCCURRENCE_REFUSALS = (
    TooLateToBook,
    TooFarAhead,
    SlotUnavailable,
    DailyLimitReached,
    SessionFull,
    AlreadyBooked,
)


async def hold_occurrences(
    session: AsyncSession, seating: Seating, anchors: Sequence[SlotRecord]
) -> list[Reservation | DomainError]:
    """`hold_seats` for each occurrence of a series of a group type, in start order (so
    every lock is taken ascending), each in a savepoint: an occurrence refused leaves
    nothing behind, the others stand. The series is one hold: `seating` checks no limit."""
    results: list[Reservation | DomainError] = []
    for anchor in anchors:
        try:
            async with session.begin_nested():
                held = await hold_seats(session, seating, anchor)
        except OCCURRENCE_REFUSALS as refusal:
            results.append(refusal)
            continue
        results.append(held)
    return results


async def settle_confirmed(session: AsyncSession, reservation_ids: Sequence[uuid.UUID]) -> None:
    """After seats were confirmed (their rows first): lock their sessions, in id order,
    and write their slots confirmed."""
    query = (
        select(GroupSession.id)
        .where(
            GroupSession.id.in_(
                select(Reservation.session_id).where(Reservation.id.in_(list(reservation_ids)))
            )
        )
        .order_by(GroupSession.id)
        .with_for_update()
    )
    await seats.settle(session, (await session.scalars(query)).all())


async def _place(session: AsyncSession, seating: Seating, anchor: SlotRecord) -> GroupSession:
    """Take the seats at the anchor: in the open session there, or in a new one
    (occupying its slots until `expires_at`, or confirmed when None)."""
    place = await _join(session, seating, anchor)
    if place is not None:
        return place
    try:
        # In a savepoint: a FOR UPDATE that waited for a rival keeps its lock on the
        # rows it then found taken; rolled back, those slot locks go with it, so the
        # join below holds no slot while it waits for the session's row (a rival
        # inside the session settles those slots: that wait was a deadlock).
        async with session.begin_nested():
            return await _open(session, seating, anchor)
    except SlotUnavailable:
        # A rival may have opened the session meanwhile (its slots are no longer
        # free, and a fresh statement sees it): then these seats join it.
        place = await _join(session, seating, anchor)
        if place is None:
            raise
        return place


async def move_seats(
    session: AsyncSession,
    settings: Settings,
    reservation: Reservation,
    anchor: SlotRecord,
    rules: BookingRules,
    now: datetime,
) -> Reservation:
    """Move a (locked) seat reservation to the start at `anchor`: it gives its seats back
    to its session (which keeps its other seats, or ends and frees its slots), then
    joins the session of its type there or opens one, keeping its status and expiry.
    When the new seats cannot be had, the caller's rollback undoes it all."""
    assert reservation.session_id is not None
    assert reservation.appointment_type_id is not None
    if anchor.start_time == reservation.start_time:
        return reservation
    held = reservation.status == ReservationStatus.HELD
    previous = (reservation.start_time, reservation.end_time)
    await holds.expire_run_out_seats_at(
        session, anchor.provider_id, reservation.appointment_type_id, anchor.start_time, now
    )
    await slots.release(session, await holds.unlink(session, [reservation.id]))
    zone = await spans.zone_of(session, reservation.provider_id)
    moving = Seating(
        settings,
        reservation.client_id,
        rules,
        zone,
        now,
        reservation.expires_at if held else None,
        reservation.seats,
        check_limit=False,
    )
    place = await _place(session, moving, anchor)
    reservation.session_id = place.id
    reservation.slot_id = place.slot_id
    reservation.start_time = place.start_time
    reservation.end_time = place.end_time
    reservation.occupied_start = place.occupied_start
    reservation.occupied_end = place.occupied_end
    reservation.revision += 1
    await session.flush()
    await seats.settle(session, [place.id])
    await outbox.record(session, EventType.RESCHEDULED, [reservation.id], now, previous=previous)
    return reservation


async def _join(session: AsyncSession, seating: Seating, anchor: SlotRecord) -> GroupSession | None:
    """Take seats in the open session of the type at the anchor (locked), or None when
    there is none."""
    place = await seats.open_at(session, anchor.provider_id, seating.type_id, anchor.start_time)
    if place is None:
        return None
    if seating.check_limit:
        held = await holds.count_live_holds(session, seating.client_id, seating.now)
        core.check_hold_limit(held, seating.settings.max_holds_per_client)
    if await seats.take(session, place.id, seating.asked) is None:
        core.check_session_has_room(place.capacity - place.seats_taken, seating.asked)
    if await _has_seat(session, place.id, seating.client_id, seating.now):
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


async def _open(session: AsyncSession, seating: Seating, anchor: SlotRecord) -> GroupSession:
    """Open a session at the anchor: claim its slots as any appointment (all or none),
    then take its first seats."""
    rules, now, asked = seating.rules, seating.now, seating.asked
    claim = await spans.claim_span(
        session,
        seating.settings,
        seating.client_id,
        anchor,
        rules,
        seating.zone,
        now,
        check_limit=seating.check_limit,
    )
    core.check_session_has_room(rules.capacity, asked)
    place = GroupSession(
        id=uuid.uuid4(),
        provider_id=anchor.provider_id,
        appointment_type_id=seating.type_id,
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
    await slots.occupy(session, claim.slot_ids, seating.expires_at)
    return place


@dataclass(frozen=True)
class SessionView:
    """A session with the seats an answer shows."""

    session: GroupSession
    reservations: Sequence[Reservation]

    def seats_taken(self, now: datetime) -> int:
        return sum(r.seats for r in self.reservations if terms.is_live(r, now))


def _live_seat(now: datetime) -> ColumnElement[bool]:
    live = core.where(core.reservation_live("seat"), now)
    return exists().where(_SEAT.session_id == GroupSession.id, live)


# Made once (an alias proxies every column, milliseconds a call).
_SEAT = aliased(Reservation, name="seat")


async def page_of_provider(
    session: AsyncSession,
    provider_id: uuid.UUID,
    *,
    start_from: datetime | None,
    start_before: datetime | None,
    now: datetime,
    request: PageRequest,
) -> list[SessionView]:
    """The provider's live sessions (a live seat at least) by (start_time, id), with
    their live seats; one extra row for look-ahead."""
    query = select(GroupSession).where(
        GroupSession.provider_id == provider_id,
        GroupSession.seats_taken > 0,
        _live_seat(now),
    )
    if start_from is not None:
        query = query.where(GroupSession.start_time >= start_from)
    if start_before is not None:
        query = query.where(GroupSession.start_time < start_before)
    if request.after is not None:
        at, last_id = request.after.at, request.after.id
        query = query.where(
            GroupSession.start_time >= at,
            or_(GroupSession.start_time > at, GroupSession.id > last_id),
        )
    query = query.order_by(GroupSession.start_time, GroupSession.id).limit(request.limit + 1)
    found = (await session.scalars(query)).all()
    seats_of = await _live_seats(session, [s.id for s in found], now)
    return [SessionView(s, seats_of.get(s.id, [])) for s in found]


async def _live_seats(
    session: AsyncSession, session_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[Reservation]]:
    """The live seats of these sessions, by session, in booking order (one statement)."""
    if not session_ids:
        return {}
    query = (
        select(Reservation)
        .where(Reservation.session_id.in_(session_ids), holds.is_live(now))
        .order_by(Reservation.created_at, Reservation.id)
    )
    seats_of: dict[uuid.UUID, list[Reservation]] = {}
    for reservation in (await session.scalars(query)).all():
        assert reservation.session_id is not None
        seats_of.setdefault(reservation.session_id, []).append(reservation)
    return seats_of


async def get_of_provider(
    session: AsyncSession, provider_id: uuid.UUID, session_id: str, now: datetime
) -> SessionView:
    """One session of the provider with its live seats; NotFound for another's or none."""
    found = await _of_provider(session, provider_id, session_id)
    seats_of = await _live_seats(session, [found.id], now)
    return SessionView(found, seats_of.get(found.id, []))


async def _of_provider(
    session: AsyncSession, provider_id: uuid.UUID, session_id: str
) -> GroupSession:
    found = await session.get(GroupSession, parse_id(session_id, "session"))
    if found is None or found.provider_id != provider_id:
        raise NotFound(f"session {session_id!r} does not exist")
    return found


async def cancel(
    session: AsyncSession, provider_id: uuid.UUID, session_id: str, now: datetime
) -> SessionView:
    """Cancel every live seat of the session (each client told, as for any cancel); its
    slots are free again. Cancelling an ended session changes nothing. Rows in the one
    order: the seats, then the session (`seats.leave`), then the slots."""
    found = await _of_provider(session, provider_id, session_id)
    live = select(Reservation.id).where(Reservation.session_id == found.id, holds.is_live(now))
    cancelled = await holds.cancel_many(session, (await session.scalars(live)).all(), now)
    freed = await holds.unlink(session, [r.id for r in cancelled])
    await slots.release(session, freed)
    await outbox.record(session, EventType.CANCELLED, [r.id for r in cancelled], now)
    # Read again (its seats taken changed), after the seats as the lock order says; gone
    # when its provider's deletion committed while we waited for the seats.
    again = await seats.lock(session, found.id)
    if again is None:
        raise NotFound(f"session {session_id!r} does not exist")
    return SessionView(again, sorted(cancelled, key=lambda r: (r.created_at, r.id)))
