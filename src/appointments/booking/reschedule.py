"""Reschedule: move a booking to another start, one at a client's or provider's
request, or many to the nearest free starts when an availability edit withdraws
theirs."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types import start_times
from appointments.booking import repository, sessions, spans, terms
from appointments.booking.repository import Owner
from appointments.errors import NotFound
from appointments.ids import parse_id
from appointments.scheduling import holds, outbox, seats, slots
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    Reservation,
)
from appointments.settings import Settings


async def reschedule(
    session: AsyncSession,
    settings: Settings,
    owner: Owner,
    reservation_id: str,
    slot_id: str,
    now: datetime,
    *,
    by_client: bool,
) -> Reservation:
    """Move a held or confirmed reservation to the start at `slot_id`, atomically.

    Same id, status and hold expiry; same length and buffers; the type's rules
    apply to the new start, and the reservation does not count against the daily
    cap for itself. The new slots are locked (its own current ones count as free,
    so a move that overlaps itself works), then the old ones are freed and the
    new ones claimed in the same transaction: when the new ones cannot be had,
    nothing changes.
    """
    reservation_uuid = parse_id(reservation_id, "reservation")
    reservation = await repository.get_owned(session, owner, reservation_uuid)
    if reservation is None:
        raise NotFound(f"reservation {reservation_id!r} does not exist")
    rules = await terms.rules_of(session, settings, reservation)
    terms.check_movable(reservation, rules, now, by_client=by_client)
    anchor = await slots.get(session, parse_id(slot_id, "slot"))
    if anchor is None or anchor.provider_id != reservation.provider_id:
        raise NotFound(f"slot {slot_id!r} does not exist")
    rules.check_start(anchor.start_time, now)
    if reservation.session_id is not None:  # a seat: to the session there, or a new one
        reservation = await _relocked(session, reservation_uuid, reservation_id)
        terms.check_movable(reservation, rules, now, by_client=by_client)
        async with spans.slot_gone_meanwhile(session, anchor.id, slot_id):
            return await sessions.move_seats(session, settings, reservation, anchor, rules, now)
    span = rules.span(anchor.start_time)
    day = None
    if rules.max_per_day is not None:
        zone = await spans.zone_of(session, reservation.provider_id)
        day = await spans.hold_day(session, reservation.provider_id, rules, span, zone)
    # Locked and read again: a cancel or another move may have come first.
    reservation = await _relocked(session, reservation_uuid, reservation_id)
    terms.check_movable(reservation, rules, now, by_client=by_client)
    async with spans.slot_gone_meanwhile(session, anchor.id, slot_id):
        claimed = await spans.lock_span(
            session, reservation.provider_id, span, now, moving=reservation.id
        )
    await spans.check_daily_cap(session, day, now, excluding=reservation.id)
    old_slots = await holds.unlink(session, [reservation.id])
    keep = set(claimed)
    await slots.release(session, [slot for slot in old_slots if slot not in keep])
    previous = (reservation.start_time, reservation.end_time)
    await spans.occupy_new_span(session, reservation, anchor.id, span, claimed)
    await outbox.record(session, EventType.RESCHEDULED, [reservation.id], now, previous=previous)
    return reservation


async def _relocked(
    session: AsyncSession, reservation_uuid: uuid.UUID, reservation_id: str
) -> Reservation:
    """The reservation read again under its lock; NotFound when it went meanwhile."""
    reservation = await holds.lock(session, reservation_uuid)
    if reservation is None:
        raise NotFound(f"reservation {reservation_id!r} does not exist")
    return reservation


MOVE_WITHIN = timedelta(days=14)


@dataclass(frozen=True)
class Move:
    reservation: Reservation
    from_start_time: datetime
    to_start_time: datetime


async def move_elsewhere(
    session: AsyncSession, settings: Settings, conflicts: Sequence[Reservation], now: datetime
) -> tuple[list[Move], list[Reservation]]:
    """Move each booking (earliest first) to the earliest start at or after its own, within
    14 days, where its appointment and buffers fit on free slots; cancel those that fit
    nowhere. In the caller's transaction, after it has withdrawn the slots going away.

    Each booking's own slots are freed before its search, so it may move onto what it
    already held (a move by 15 minutes); the type's notice, horizon and cap are the
    provider's to overrule here, so only free slots count.
    """
    moved: list[Move] = []
    cancelled: list[Reservation] = []
    seats_of: dict[uuid.UUID, list[Reservation]] = {}
    for reservation in conflicts:
        if reservation.session_id is not None:
            seats_of.setdefault(reservation.session_id, []).append(reservation)
    for place_id, seated in seats_of.items():
        done, gave_up = await _move_session(session, settings, place_id, seated, now)
        moved.extend(done)
        cancelled.extend(gave_up)
    plain = [r for r in conflicts if r.session_id is None]
    for reservation in sorted(plain, key=lambda r: (r.start_time, r.id)):
        rules = await terms.rules_of(session, settings, reservation)
        freed = await holds.unlink(session, [reservation.id])
        await slots.release(session, freed)
        search = start_times.Search(
            start_from=reservation.start_time, latest=reservation.start_time + MOVE_WITHIN
        )
        found = await start_times.find(
            session, reservation.provider_id, rules, search, now, limit=1
        )
        if not found:
            cancelled.extend(await holds.cancel_many(session, [reservation.id], now))
            continue
        origin = reservation.start_time
        previous = (reservation.start_time, reservation.end_time)
        span = rules.span(found[0].start_time)
        claimed = await spans.lock_span(session, reservation.provider_id, span, now)
        await spans.occupy_new_span(session, reservation, found[0].slot_id, span, claimed)
        await outbox.record(
            session, EventType.RESCHEDULED, [reservation.id], now, previous=previous
        )
        moved.append(Move(reservation, origin, span.start))
    await outbox.record(session, EventType.CANCELLED, [r.id for r in cancelled], now)
    return moved, cancelled


async def _move_session(
    session: AsyncSession,
    settings: Settings,
    place_id: uuid.UUID,
    seated: Sequence[Reservation],
    now: datetime,
) -> tuple[list[Move], list[Reservation]]:
    """Move a group session whole, with all its (locked, live) seats: to the earliest start
    at or after its own, within 14 days, where its span fits on free slots (never into
    another session); cancel every seat when there is none. Its seats keep their status."""
    place = await seats.lock(session, place_id)
    assert place is not None
    rules = await terms.rules_of(session, settings, seated[0])
    freed = await seats.unlink_all(session, place.id)
    await slots.release(session, freed)
    search = start_times.Search(start_from=place.start_time, latest=place.start_time + MOVE_WITHIN)
    # Free spans only: a session moves whole, it does not merge into another.
    found = await start_times.find(
        session, place.provider_id, replace(rules, capacity=1), search, now, limit=1
    )
    if not found:
        gave_up = await holds.cancel_many(session, [r.id for r in seated], now)
        await holds.unlink(session, [r.id for r in gave_up])
        return [], list(gave_up)
    origin = place.start_time
    span = rules.span(found[0].start_time)
    claimed = await spans.lock_span(session, place.provider_id, span, now)
    await seats.link(session, place.id, place.provider_id, claimed)
    place.slot_id = found[0].slot_id
    place.start_time, place.end_time = span.start, span.end
    place.occupied_start, place.occupied_end = span.occupied_start, span.occupied_end
    moved: list[Move] = []
    for reservation in seated:
        previous = (reservation.start_time, reservation.end_time)
        reservation.slot_id = place.slot_id
        reservation.start_time, reservation.end_time = span.start, span.end
        reservation.occupied_start = span.occupied_start
        reservation.occupied_end = span.occupied_end
        reservation.revision += 1
        await session.flush()
        await outbox.record(
            session, EventType.RESCHEDULED, [reservation.id], now, previous=previous
        )
        moved.append(Move(reservation, origin, span.start))
    await seats.settle(session, [place.id])
    return moved, []
