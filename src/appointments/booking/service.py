"""The booking rules: reserve a slot or an appointment of any length, confirm a hold,
cancel, reschedule, and expire holds that ran out."""

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn, TypeVar

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from appointments.appointment_types import repository as appointment_types
from appointments.appointment_types import start_times
from appointments.appointment_types.rules import BookingRules, Span
from appointments.booking import one_statement, repository
from appointments.booking.errors import (
    ReservationCancelled,
    ReservationExpired,
    ReservationNotHeld,
    SlotUnavailable,
    TooLateToChange,
)
from appointments.booking.repository import Owner
from appointments.clients import service as clients
from appointments.db import violates
from appointments.errors import NotFound
from appointments.idempotency import repository as idempotency_keys
from appointments.ids import parse_id
from appointments.observability.metrics import SWEEPS, SWEPT, count_outcome
from appointments.providers import repository as providers_repository
from appointments.ratelimit import service as rate_windows
from appointments.scheduling import holds, outbox, slots
from appointments.scheduling import rules as core
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    ONE_LIVE_PER_SLOT,
    ONE_RESERVATION_PER_SLOT,
    Reservation,
    ReservationStatus,
)
from appointments.settings import Settings

# Either index refusing a second live reservation of a slot means a rival won the slot.
_ONE_LIVE_PER_SLOT = (ONE_LIVE_PER_SLOT, ONE_RESERVATION_PER_SLOT)


@contextmanager
def _slot_taken_meanwhile(detail: str) -> Iterator[None]:
    """A unique-index refusal inside means a rival's claim committed first: 409, not 500
    (from SQLAlchemy, or from a statement sent straight to asyncpg)."""
    try:
        yield
    except (IntegrityError, asyncpg.UniqueViolationError) as exc:
        if any(violates(exc, index) for index in _ONE_LIVE_PER_SLOT):
            raise SlotUnavailable(detail) from exc
        raise


async def reserve_slot(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    slot_id: str,
    now: datetime,
    appointment_type_id: str | None = None,
) -> Reservation:
    """Hold a free slot for the client for `hold_seconds`; with an appointment type,
    every slot of the appointment and its buffers (`reserve_appointment`).

    The claim is one conditional UPDATE (free and far enough ahead), then one
    INSERT; the partial unique index on live reservations backs it up, so even a
    bug here could not produce a second live reservation of a slot. The caller
    must have locked the client's row (`clients.lock_client`), so parallel
    reserves of one client cannot together exceed the hold limit.
    """
    slot_uuid = parse_id(slot_id, "slot")
    if appointment_type_id is not None:
        return await reserve_appointment(
            session, settings, client_id, slot_uuid, appointment_type_id, now
        )
    notice = core.service_notice(settings)
    bookable_after = core.bookable_after(now, notice)
    reservation = _new_hold(settings, client_id, slot_uuid, now)
    with _slot_taken_meanwhile("the slot was taken at the same moment"):
        if session.get_bind().dialect.name == "postgresql":
            await _reserve_in_one_statement(session, settings, reservation, bookable_after, notice)
        else:
            await _reserve_step_by_step(session, settings, reservation, bookable_after, notice)
    return reservation


def _new_hold(
    settings: Settings, client_id: uuid.UUID, slot_id: uuid.UUID, now: datetime
) -> Reservation:
    """The hold a plain reserve makes (times and provider filled in by the claim)."""
    return Reservation(
        id=uuid.uuid4(),
        slot_id=slot_id,
        client_id=client_id,
        status=ReservationStatus.HELD,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.hold_seconds),
    )


async def reserve_alone(
    engine: AsyncEngine, settings: Settings, client_id: str, slot_id: str, now: datetime
) -> Reservation:
    """PostgreSQL, a plain reserve with no Idempotency-Key: the client's lock, the
    checks, the claim and the insert as one statement sent alone, so the whole
    reserve is one round trip and one implicit transaction."""
    client_uuid = parse_id(client_id, "client")
    notice = core.service_notice(settings)
    bookable_after = core.bookable_after(now, notice)
    reservation = _new_hold(settings, client_uuid, parse_id(slot_id, "slot"), now)
    with _slot_taken_meanwhile("the slot was taken at the same moment"):
        values = one_statement.reserve_values(
            reservation, bookable_after, settings.max_holds_per_client
        )
        outcome = await one_statement.reserve_alone(engine, values)
        _settle_hold(outcome, settings, reservation, bookable_after, notice, client_id)
    return reservation


async def _reserve_in_one_statement(
    session: AsyncSession,
    settings: Settings,
    reservation: Reservation,
    bookable_after: datetime,
    notice: timedelta,
) -> None:
    """PostgreSQL: lock the client, expire, claim, count and insert in one round trip."""
    values = one_statement.reserve_values(
        reservation, bookable_after, settings.max_holds_per_client
    )
    outcome = await one_statement.reserve(session, values)
    _settle_hold(outcome, settings, reservation, bookable_after, notice, "")


def _settle_hold(
    outcome: one_statement.Outcome,
    settings: Settings,
    reservation: Reservation,
    bookable_after: datetime,
    notice: timedelta,
    client: str,
) -> None:
    """Fill in the held reservation from what the statement did, or raise why not."""
    if not outcome.client_known:
        raise NotFound(f"client {client!r} does not exist")
    if outcome.claimed is not None:
        _take_times(reservation, outcome.claimed)
        return
    if outcome.slot_start is None:
        raise NotFound(f"slot {str(reservation.slot_id)!r} does not exist")
    core.check_notice(outcome.slot_start, reservation.created_at, notice)
    # The statement saw the slot free, so only the hold limit can have refused it
    # (or a rival's claim that committed after the snapshot: then it is taken).
    if outcome.slot_free:
        core.check_hold_limit(outcome.holds, settings.max_holds_per_client)
    raise SlotUnavailable("the slot is already held or confirmed")


async def _reserve_step_by_step(
    session: AsyncSession,
    settings: Settings,
    reservation: Reservation,
    bookable_after: datetime,
    notice: timedelta,
) -> None:
    """Portable path (SQLite): the same steps as separate statements."""
    now = reservation.created_at
    await holds.expire_stale_hold_of_slot(session, reservation.slot_id, now)
    claimed = await slots.claim_slot_if_free(
        session, reservation.slot_id, now, reservation.expires_at, starting_after=bookable_after
    )
    if claimed is None:
        await _explain_refused_claim(session, reservation.slot_id, now, notice)
    held = await holds.count_live_holds(session, reservation.client_id, now)
    core.check_hold_limit(held, settings.max_holds_per_client)
    _take_times(reservation, claimed)
    session.add(reservation)
    await session.flush()
    await holds.link(session, reservation.id, claimed.provider_id, [reservation.slot_id])
    await outbox.record(session, EventType.HELD, [reservation.id], now)


def _take_times(reservation: Reservation, claimed: slots.ClaimedSlot) -> None:
    reservation.provider_id = claimed.provider_id
    reservation.start_time = reservation.occupied_start = claimed.start_time
    reservation.end_time = reservation.occupied_end = claimed.end_time


async def reserve_appointment(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    slot_id: uuid.UUID,
    appointment_type_id: str,
    now: datetime,
) -> Reservation:
    """Hold every slot of an appointment of the type starting at the slot, buffers included.

    The slots are locked in start order and claimed by one UPDATE, in one
    transaction with the reservation and its slot links: all of them or none.
    The unique index on the links still refuses a slot a rival holds, whatever
    happened before. Checks in the contract's order: unknown slot or type (404),
    notice and horizon (422), slots (409 `slot_unavailable`), daily cap, hold limit.
    """
    anchor = await slots.get(session, slot_id)
    if anchor is None:
        raise NotFound(f"slot {str(slot_id)!r} does not exist")
    found = await appointment_types.get_with_timezone(
        session, anchor.provider_id, parse_id(appointment_type_id, "appointment type")
    )
    if found is None:
        raise NotFound(f"appointment type {appointment_type_id!r} does not exist")
    kind, zone = found
    rules = BookingRules.of(kind, settings)
    rules.check_start(anchor.start_time, now)
    span = rules.span(anchor.start_time)
    day = await _hold_day(session, anchor.provider_id, rules, span, zone)
    claimed = await _lock_span(session, anchor.provider_id, span, now)
    await _check_daily_cap(session, day, now)
    held = await holds.count_live_holds(session, client_id, now)
    core.check_hold_limit(held, settings.max_holds_per_client)
    expires_at = now + timedelta(seconds=settings.hold_seconds)
    reservation = Reservation(
        id=uuid.uuid4(),
        slot_id=anchor.id,
        provider_id=anchor.provider_id,
        client_id=client_id,
        appointment_type_id=kind.id,
        status=ReservationStatus.HELD,
        start_time=span.start,
        end_time=span.end,
        occupied_start=span.occupied_start,
        occupied_end=span.occupied_end,
        created_at=now,
        expires_at=expires_at,
    )
    with _slot_taken_meanwhile("a slot of the appointment was taken at the same moment"):
        await slots.occupy(session, claimed, expires_at)
        session.add(reservation)
        await session.flush()
        await holds.link(session, reservation.id, anchor.provider_id, claimed)
    await outbox.record(session, EventType.HELD, [reservation.id], now)
    return reservation


async def _lock_span(
    session: AsyncSession,
    provider_id: uuid.UUID,
    span: Span,
    now: datetime,
    *,
    moving: uuid.UUID | None = None,
) -> Sequence[uuid.UUID]:
    """Lock every slot of the span, or refuse (409) when one is missing, held, confirmed
    or removed. Run-out holds in the way are written down as expired first."""
    await holds.expire_stale_holds_in_span(
        session, provider_id, span.occupied_start, span.occupied_end, now
    )
    free = await slots.lock_free_span(
        session, provider_id, span.occupied_start, span.occupied_end, now, occupied_by=moving
    )
    if len(free) != span.slots:
        raise SlotUnavailable(
            "a slot of the appointment or its buffers is missing, held or confirmed"
        )
    return free


async def _hold_day(
    session: AsyncSession, provider_id: uuid.UUID, rules: BookingRules, span: Span, zone: str
) -> repository.CappedDay | None:
    """For a capped type: the start's calendar day in the provider's zone, locked against
    other bookings of the type on that day. None when the type has no cap."""
    if rules.max_per_day is None or rules.type_id is None:
        return None
    day = repository.CappedDay(provider_id, rules.type_id, span.start, zone, rules.max_per_day)
    await repository.lock_day(session, day)
    return day


async def _check_daily_cap(
    session: AsyncSession,
    day: repository.CappedDay | None,
    now: datetime,
    *,
    excluding: uuid.UUID | None = None,
) -> None:
    if day is not None:
        has_room = await repository.day_has_room(session, day, now, excluding=excluding)
        core.check_day_has_room(has_room, day.cap)


async def _explain_refused_claim(
    session: AsyncSession, slot_id: uuid.UUID, now: datetime, notice: timedelta
) -> NoReturn:
    """Raise the error that says why the slot could not be claimed (contract order)."""
    slot = await slots.get(session, slot_id)
    if slot is None:
        raise NotFound(f"slot {str(slot_id)!r} does not exist")
    core.check_notice(slot.start_time, now, notice)
    raise SlotUnavailable("the slot is already held or confirmed")


async def confirm_hold(
    session: AsyncSession, client_id: str, reservation_id: str, now: datetime
) -> Reservation:
    """Turn the client's live hold into a confirmed booking; confirming again is harmless."""
    client = await clients.get_client(session, client_id)
    reservation_uuid = parse_id(reservation_id, "reservation")
    confirmed = await holds.confirm_if_live(session, reservation_uuid, client.id, now)
    if confirmed is not None:
        await slots.mark_confirmed(session, confirmed.id)
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


async def confirm_alone(
    engine: AsyncEngine, client_id: str, reservation_id: str, now: datetime
) -> one_statement.ReservationRow:
    """PostgreSQL, with no Idempotency-Key: `confirm_hold` as one statement sent alone."""
    client_uuid = parse_id(client_id, "client")
    outcome = await one_statement.confirm(
        engine,
        reservation_id=parse_id(reservation_id, "reservation"),
        client_id=client_uuid,
        now=now,
    )
    if not outcome.client_known:
        raise NotFound(f"client {client_id!r} does not exist")
    if outcome.changed and outcome.reservation is not None:
        return outcome.reservation
    return _unconfirmed(outcome.reservation, reservation_id)


async def cancel_reservation(
    session: AsyncSession,
    settings: Settings,
    owner: Owner,
    reservation_id: str,
    now: datetime,
    *,
    remove_slot: bool = False,
    by_client: bool = False,
) -> Reservation:
    """Cancel a held or confirmed reservation; its slots are freed (or withdrawn).

    Cancelling a cancelled reservation returns it unchanged. Someone else's
    reservation is reported exactly like a missing one. A client is bound by the
    type's `change_notice_minutes`; providers and admins are not.
    """
    reservation_uuid = parse_id(reservation_id, "reservation")
    if by_client:
        current = await repository.get_owned(session, owner, reservation_uuid)
        if current is not None and _is_live(current, now):
            rules = await rules_of(session, settings, current)
            _check_change_notice(current, rules, now)
    cancelled = await repository.cancel_if_live(session, owner, reservation_uuid, now)
    if cancelled is not None:
        freed = await holds.unlink(session, [cancelled.id])
        await slots.release(session, freed, remove=remove_slot)
        await outbox.record(session, EventType.CANCELLED, [cancelled.id], now)
        return cancelled
    reservation = await repository.get_owned(session, owner, reservation_uuid)
    if reservation is None:
        raise NotFound(f"reservation {reservation_id!r} does not exist")
    if reservation.status == ReservationStatus.CANCELLED:
        return reservation
    raise ReservationExpired("the hold ran out; there is nothing to cancel")


def _is_live(reservation: Reservation, now: datetime) -> bool:
    return core.reservation_is_live(reservation.status, reservation.expires_at, now)


def _check_change_notice(reservation: Reservation, rules: BookingRules, now: datetime) -> None:
    """A client's cancel or move: refused once the appointment has started (whatever
    its type says: moving a past booking into the future would be a free new one),
    and inside its type's `change_notice_minutes`."""
    if reservation.start_time <= now:
        raise TooLateToChange("this appointment has already started; ask the provider")
    if rules.change_notice is not None and reservation.start_time <= now + rules.change_notice:
        minutes = rules.change_notice.total_seconds() / 60
        raise TooLateToChange(
            f"this appointment can be changed by the client only while it starts more than "
            f"{minutes:g} minutes from now; ask the provider"
        )


async def rules_of(
    session: AsyncSession, settings: Settings, reservation: Reservation
) -> BookingRules:
    """The terms the reservation was booked under (its type's, even when the type has
    been deleted since), with the length and buffers it was booked with."""
    rules = BookingRules.plain(settings)
    if reservation.appointment_type_id is not None:
        kind = await appointment_types.get(
            session, reservation.provider_id, reservation.appointment_type_id, include_deleted=True
        )
        if kind is not None:
            rules = BookingRules.of(kind, settings)
    return rules.with_length_of(
        reservation.start_time,
        reservation.end_time,
        reservation.occupied_start,
        reservation.occupied_end,
    )


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
    rules = await rules_of(session, settings, reservation)
    _check_movable(reservation, rules, now, by_client=by_client)
    anchor = await slots.get(session, parse_id(slot_id, "slot"))
    if anchor is None or anchor.provider_id != reservation.provider_id:
        raise NotFound(f"slot {slot_id!r} does not exist")
    rules.check_start(anchor.start_time, now)
    span = rules.span(anchor.start_time)
    day = None
    if rules.max_per_day is not None:
        zone = await _zone_of(session, reservation.provider_id)
        day = await _hold_day(session, reservation.provider_id, rules, span, zone)
    # Locked and read again: a cancel or another move may have come first.
    reservation = await holds.lock(session, reservation_uuid)
    _check_movable(reservation, rules, now, by_client=by_client)
    claimed = await _lock_span(session, reservation.provider_id, span, now, moving=reservation.id)
    await _check_daily_cap(session, day, now, excluding=reservation.id)
    old_slots = await holds.unlink(session, [reservation.id])
    keep = set(claimed)
    await slots.release(session, [slot for slot in old_slots if slot not in keep])
    previous = (reservation.start_time, reservation.end_time)
    await _settle(session, reservation, anchor.id, span, claimed)
    await outbox.record(session, EventType.RESCHEDULED, [reservation.id], now, previous=previous)
    return reservation


def _check_movable(
    reservation: Reservation, rules: BookingRules, now: datetime, *, by_client: bool
) -> None:
    if reservation.status == ReservationStatus.CANCELLED:
        raise ReservationCancelled("the reservation is cancelled; reserve a new slot instead")
    if not _is_live(reservation, now):
        raise ReservationExpired("the hold ran out; reserve the slot again")
    if by_client:
        _check_change_notice(reservation, rules, now)


async def _zone_of(session: AsyncSession, provider_id: uuid.UUID) -> str:
    provider = await providers_repository.get(session, provider_id)
    return "UTC" if provider is None else provider.timezone


async def _settle(
    session: AsyncSession,
    reservation: Reservation,
    anchor_id: uuid.UUID,
    span: Span,
    claimed: Sequence[uuid.UUID],
) -> None:
    """Occupy the (locked) new slots of a reservation whose old ones the caller freed,
    keeping its status and hold expiry."""
    held = reservation.status == ReservationStatus.HELD
    await slots.occupy(session, claimed, reservation.expires_at if held else None)
    await holds.link(session, reservation.id, reservation.provider_id, claimed)
    reservation.slot_id = anchor_id
    reservation.start_time = span.start
    reservation.end_time = span.end
    reservation.occupied_start = span.occupied_start
    reservation.occupied_end = span.occupied_end
    reservation.revision += 1
    await session.flush()


# Rate-limit windows are a minute long; the sweep drops those over an hour old.
RATE_WINDOWS_KEPT = timedelta(hours=1)


async def expire_stale_holds(session: AsyncSession, now: datetime) -> int:
    """Persist every hold that has run out: reservations expired, their slots available."""
    await holds.lock_sweep(session)
    expired = await holds.expire_stale_holds(session, now)
    await slots.release_stale_holds(session, now)
    await idempotency_keys.delete_expired(session, now)
    await rate_windows.forget_before(session, now - RATE_WINDOWS_KEPT)
    SWEEPS.inc()
    SWEPT.inc(expired)
    count_outcome("expired", expired)
    return expired


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
    for reservation in sorted(conflicts, key=lambda r: (r.start_time, r.id)):
        rules = await rules_of(session, settings, reservation)
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
        claimed = await _lock_span(session, reservation.provider_id, span, now)
        await _settle(session, reservation, found[0].slot_id, span, claimed)
        await outbox.record(
            session, EventType.RESCHEDULED, [reservation.id], now, previous=previous
        )
        moved.append(Move(reservation, origin, span.start))
    await outbox.record(session, EventType.CANCELLED, [r.id for r in cancelled], now)
    return moved, cancelled


async def cancel_conflicts(
    session: AsyncSession, conflicts: Sequence[Reservation], now: datetime
) -> Sequence[Reservation]:
    """Cancel these reservations, in the caller's transaction; their slots become
    available again, except those the caller has already withdrawn."""
    cancelled = await holds.cancel_many(session, [r.id for r in conflicts], now)
    freed = await holds.unlink(session, [r.id for r in cancelled])
    await slots.release(session, freed)
    await outbox.record(session, EventType.CANCELLED, [r.id for r in cancelled], now)
    return cancelled
