"""Claiming the slots an appointment spans (buffers included): lock them in start
order, hold its day against the daily cap, occupy them; shared by the reserve, the
reschedule and the moves of availability edits."""

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types.rules import BookingRules, Span
from appointments.booking import repository
from appointments.booking.errors import (
    SlotUnavailable,
)
from appointments.db import violates
from appointments.errors import NotFound
from appointments.providers import repository as providers_repository
from appointments.scheduling import holds, slots
from appointments.scheduling import rules as core
from appointments.scheduling.models import (
    ONE_LIVE_PER_SLOT,
    ONE_RESERVATION_PER_SLOT,
    Reservation,
    ReservationStatus,
    SlotRecord,
)
from appointments.settings import Settings

# Either index refusing a second live reservation of a slot means a rival won the slot.
_ONE_LIVE_PER_SLOT = (ONE_LIVE_PER_SLOT, ONE_RESERVATION_PER_SLOT)


@contextmanager
def slot_taken_meanwhile(detail: str) -> Iterator[None]:
    """A unique-index refusal inside means a rival's claim committed first: 409, not 500
    (from SQLAlchemy, or from a statement sent straight to asyncpg)."""
    try:
        yield
    except (IntegrityError, asyncpg.UniqueViolationError) as exc:
        if any(violates(exc, index) for index in _ONE_LIVE_PER_SLOT):
            raise SlotUnavailable(detail) from exc
        raise


@asynccontextmanager
async def slot_gone_meanwhile(
    session: AsyncSession, slot_id: uuid.UUID, shown: str
) -> AsyncIterator[None]:
    """A refusal inside for a slot that went while we waited for its lock (withdrawn,
    or with its provider) is answered as a request sent after that: 404. A unique
    index's refusal (the cause of some) is a rival's claim; only refusals pay the read."""
    try:
        yield
    except SlotUnavailable as refused:
        if refused.__cause__ is None and not await slots.still_there(session, slot_id):
            raise NotFound(f"slot {shown!r} does not exist") from None
        raise


async def lock_span(
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
    check_whole(span, free)
    return free


def check_whole(span: Span, free: Sequence[uuid.UUID]) -> None:
    """SlotUnavailable unless every slot of the span was found free (and locked)."""
    if len(free) != span.slots:
        raise SlotUnavailable(
            "a slot of the appointment or its buffers is missing, held or confirmed"
        )


async def hold_day(
    session: AsyncSession, provider_id: uuid.UUID, rules: BookingRules, span: Span, zone: str
) -> repository.CappedDay | None:
    """For a capped type: the start's calendar day in the provider's zone, locked against
    other bookings of the type on that day. None when the type has no cap."""
    if rules.max_per_day is None or rules.type_id is None:
        return None
    day = repository.CappedDay(provider_id, rules.type_id, span.start, zone, rules.max_per_day)
    await repository.lock_day(session, day)
    return day


async def check_daily_cap(
    session: AsyncSession,
    day: repository.CappedDay | None,
    now: datetime,
    *,
    excluding: uuid.UUID | None = None,
) -> None:
    if day is not None:
        has_room = await repository.day_has_room(session, day, now, excluding=excluding)
        core.check_day_has_room(has_room, day.cap)


async def explain_refused_claim(
    session: AsyncSession, slot_id: uuid.UUID, now: datetime, notice: timedelta
) -> NoReturn:
    """Raise the error that says why the slot could not be claimed (contract order)."""
    slot = await slots.get(session, slot_id)
    if slot is None:
        raise NotFound(f"slot {str(slot_id)!r} does not exist")
    core.check_notice(slot.start_time, now, notice)
    raise SlotUnavailable("the slot is already held or confirmed")


def take_times(reservation: Reservation, claimed: slots.ClaimedSlot) -> None:
    reservation.provider_id = claimed.provider_id
    reservation.start_time = reservation.occupied_start = claimed.start_time
    reservation.end_time = reservation.occupied_end = claimed.end_time


async def occupy_new_span(
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


async def zone_of(session: AsyncSession, provider_id: uuid.UUID) -> str:
    provider = await providers_repository.get(session, provider_id)
    return "UTC" if provider is None else provider.timezone


@dataclass(frozen=True)
class Claim:
    """An appointment's span checked and locked, not yet held."""

    anchor: SlotRecord
    span: Span
    slot_ids: Sequence[uuid.UUID]


async def claim_span(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    anchor: SlotRecord,
    rules: BookingRules,
    zone: str,
    now: datetime,
    *,
    check_limit: bool,
) -> Claim:
    """The checks of a single reserve in the contract's order (notice and horizon, the
    span's slots locked and free, the daily cap, and the hold limit when
    `check_limit`); raises the refusal. Writes nothing but the expiry of run-out holds
    in the span's way."""
    rules.check_start(anchor.start_time, now)
    span = rules.span(anchor.start_time)
    day = await hold_day(session, anchor.provider_id, rules, span, zone)
    claimed = await lock_span(session, anchor.provider_id, span, now)
    await check_daily_cap(session, day, now)
    if check_limit:
        held = await holds.count_live_holds(session, client_id, now)
        core.check_hold_limit(held, settings.max_holds_per_client)
    return Claim(anchor, span, claimed)
