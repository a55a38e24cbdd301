"""The booking rules: reserve a slot, confirm a hold, expire holds that ran out."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.availability import repository as slots
from appointments.booking import one_statement, repository
from appointments.booking.errors import (
    ReservationExpired,
    ReservationNotHeld,
    SlotUnavailable,
    TooLateToBook,
    TooManyHolds,
)
from appointments.booking.models import Reservation, ReservationStatus
from appointments.booking.repository import Owner
from appointments.clients import service as clients
from appointments.errors import NotFound
from appointments.idempotency import repository as idempotency_keys
from appointments.ids import parse_id
from appointments.observability.metrics import RESERVATIONS, SWEEPS, SWEPT
from appointments.settings import Settings

_ONE_LIVE_PER_SLOT = "uq_reservations_one_live_per_slot"


async def reserve_slot(
    session: AsyncSession, settings: Settings, client_id: uuid.UUID, slot_id: str, now: datetime
) -> Reservation:
    """Hold a free slot for the client for `hold_seconds`.

    The claim is one conditional UPDATE (free and far enough ahead), then one
    INSERT; the partial unique index on live reservations backs it up, so even a
    bug here could not produce a second live reservation of a slot. The caller
    must have locked the client's row (`clients.lock_client`), so parallel
    reserves of one client cannot together exceed the hold limit.
    """
    slot_uuid = parse_id(slot_id, "slot")
    hold_expires_at = now + timedelta(seconds=settings.hold_seconds)
    notice = timedelta(seconds=settings.min_notice_seconds)
    bookable_after = now + notice
    reservation = Reservation(
        id=uuid.uuid4(),
        slot_id=slot_uuid,
        client_id=client_id,
        status=ReservationStatus.HELD,
        created_at=now,
        expires_at=hold_expires_at,
    )
    try:
        if session.get_bind().dialect.name == "postgresql":
            await _reserve_in_one_statement(session, settings, reservation, bookable_after, notice)
        else:
            await _reserve_step_by_step(session, settings, reservation, bookable_after, notice)
    except IntegrityError as exc:
        if _ONE_LIVE_PER_SLOT in str(exc.orig):
            raise SlotUnavailable("the slot was taken at the same moment") from exc
        raise
    return reservation


async def _reserve_in_one_statement(
    session: AsyncSession,
    settings: Settings,
    reservation: Reservation,
    bookable_after: datetime,
    notice: timedelta,
) -> None:
    """PostgreSQL: expire, claim, count and insert in one round trip."""
    outcome = await one_statement.reserve(
        session,
        reservation_id=reservation.id,
        slot_id=reservation.slot_id,
        client_id=reservation.client_id,
        now=reservation.created_at,
        expires_at=reservation.expires_at,
        bookable_after=bookable_after,
        max_holds=settings.max_holds_per_client,
    )
    if outcome.claimed is not None:
        _take_times(reservation, outcome.claimed)
        return
    if outcome.slot_start is None:
        raise NotFound(f"slot {str(reservation.slot_id)!r} does not exist")
    if outcome.slot_start <= bookable_after:
        raise _too_late(notice)
    # The statement saw the slot free, so only the hold limit can have refused it
    # (or a rival's claim that committed after the snapshot: then it is taken).
    if outcome.slot_free and outcome.holds >= settings.max_holds_per_client:
        raise _too_many_holds(settings)
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
    await repository.expire_stale_hold_of_slot(session, reservation.slot_id, now)
    claimed = await slots.claim_slot_if_free(
        session, reservation.slot_id, now, reservation.expires_at, starting_after=bookable_after
    )
    if claimed is None:
        await _explain_refused_claim(session, reservation.slot_id, bookable_after, notice)
    held = await repository.count_live_holds(session, reservation.client_id, now)
    if held >= settings.max_holds_per_client:
        raise _too_many_holds(settings)
    _take_times(reservation, claimed)
    session.add(reservation)
    await session.flush()


def _take_times(reservation: Reservation, claimed: slots.ClaimedSlot) -> None:
    reservation.provider_id = claimed.provider_id
    reservation.start_time = claimed.start_time
    reservation.end_time = claimed.end_time


def _too_many_holds(settings: Settings) -> TooManyHolds:
    return TooManyHolds(
        f"a client may hold at most {settings.max_holds_per_client} slot(s) at once; "
        "confirm or let a hold run out first"
    )


def _too_late(notice: timedelta) -> TooLateToBook:
    hours = notice.total_seconds() / 3600
    return TooLateToBook(
        f"a slot can be reserved only when it starts more than {hours:g} hours from now"
    )


async def _explain_refused_claim(
    session: AsyncSession, slot_id: uuid.UUID, bookable_after: datetime, notice: timedelta
) -> NoReturn:
    """Raise the error that says why the slot could not be claimed (contract order)."""
    slot = await slots.get(session, slot_id)
    if slot is None:
        raise NotFound(f"slot {str(slot_id)!r} does not exist")
    if slot.start_time <= bookable_after:
        raise _too_late(notice)
    raise SlotUnavailable("the slot is already held or confirmed")


async def confirm_hold(
    session: AsyncSession, client_id: str, reservation_id: str, now: datetime
) -> Reservation:
    """Turn the client's live hold into a confirmed booking; confirming again is harmless."""
    client = await clients.get_client(session, client_id)
    reservation_uuid = parse_id(reservation_id, "reservation")
    confirmed = await repository.confirm_if_live(session, reservation_uuid, client.id, now)
    if confirmed is not None:
        await slots.mark_confirmed(session, confirmed.slot_id)
        return confirmed

    reservation = await repository.get_of_client(session, reservation_uuid, client.id)
    if reservation is None:
        # Another client's reservation is reported exactly like a missing one.
        raise NotFound(f"reservation {reservation_id!r} does not exist")
    if reservation.status == ReservationStatus.CONFIRMED:
        return reservation
    if reservation.status in (ReservationStatus.HELD, ReservationStatus.EXPIRED):
        raise ReservationExpired("the hold ran out; reserve the slot again")
    raise ReservationNotHeld(f"the reservation is {reservation.status}, not held")


async def cancel_reservation(
    session: AsyncSession,
    owner: Owner,
    reservation_id: str,
    now: datetime,
    *,
    remove_slot: bool = False,
) -> Reservation:
    """Cancel a held or confirmed reservation; its slot is freed (or withdrawn).

    Cancelling a cancelled reservation returns it unchanged. Someone else's
    reservation is reported exactly like a missing one.
    """
    reservation_uuid = parse_id(reservation_id, "reservation")
    cancelled = await repository.cancel_if_live(session, owner, reservation_uuid, now)
    if cancelled is not None:
        await slots.release(session, [cancelled.slot_id], remove=remove_slot)
        return cancelled
    reservation = await repository.get_owned(session, owner, reservation_uuid)
    if reservation is None:
        raise NotFound(f"reservation {reservation_id!r} does not exist")
    if reservation.status == ReservationStatus.CANCELLED:
        return reservation
    raise ReservationExpired("the hold ran out; there is nothing to cancel")


async def expire_stale_holds(session: AsyncSession, now: datetime) -> int:
    """Persist every hold that has run out: reservations expired, their slots available."""
    await repository.lock_sweep(session)
    expired = await repository.expire_stale_holds(session, now)
    await slots.release_stale_holds(session, now)
    await idempotency_keys.delete_expired(session, now)
    SWEEPS.inc()
    SWEPT.inc(expired)
    RESERVATIONS.labels(outcome="expired").inc(expired)
    return expired


async def cancel_conflicts(
    session: AsyncSession, conflicts: Sequence[Reservation], now: datetime
) -> Sequence[Reservation]:
    """Cancel these reservations and withdraw their slots, in the caller's transaction."""
    cancelled = await repository.cancel_many(session, [r.id for r in conflicts], now)
    await slots.release(session, [r.slot_id for r in cancelled], remove=True)
    return cancelled
