"""Recurring series: the same appointment every n weeks, booked in one request.

Each occurrence is an ordinary reservation (`series_id` set), held by exactly the
steps of a single reserve (`reserve.hold_span`: notice and horizon, slots, daily
cap), in one transaction. Occurrences are taken in start order, so every lock
(the daily-cap day, the span's slot rows) is taken in ascending time after the
client's row: two series racing for overlapping weeks queue up instead of
deadlocking, and exactly one gets each contested week. Occurrence k starts at the
first's wall-clock time in the provider's zone, k x interval weeks later (10:00 stays
10:00 across a daylight-saving change). The held occurrences share one expiry and
count as one hold against the hold limit (`scheduling.rules.live_hold_count`).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types import repository as appointment_types
from appointments.appointment_types.rules import BookingRules
from appointments.booking import reserve, series_statement, sessions, spans, terms
from appointments.booking.errors import (
    ReservationExpired,
    SeriesConflict,
    SlotUnavailable,
)
from appointments.booking.repository import Owner
from appointments.booking.schemas import RefusalOut
from appointments.db import RowLock
from appointments.errors import DomainError, NotFound
from appointments.ids import parse_id
from appointments.providers import repository as providers_repository
from appointments.scheduling import holds, outbox, slots
from appointments.scheduling import rules as core
from appointments.scheduling.events import EventType
from appointments.scheduling.models import (
    Reservation,
    ReservationStatus,
    Series,
    SeriesPolicy,
    Slot,
    SlotStatus,
)
from appointments.settings import Settings

_Passed = TypeVar("_Passed", spans.Claim, Reservation)


@dataclass(frozen=True)
class Refusal:
    """An occurrence left out (`skipped`, `conflicts`) or left in place (`kept`), and why."""

    start_time: datetime
    code: str


@dataclass(frozen=True)
class SeriesRequest:
    slot_id: str
    appointment_type_id: str | None
    seats: int
    interval_weeks: int
    count: int
    policy: SeriesPolicy


@dataclass
class SeriesResult:
    series: Series
    reservations: Sequence[Reservation]
    skipped: list[Refusal] = field(default_factory=list)
    kept: list[Refusal] = field(default_factory=list)


def occurrence_starts(
    first: datetime, zone: str, interval_weeks: int, count: int
) -> list[tuple[datetime, bool]]:
    """Each occurrence's start (UTC), and whether that wall-clock time exists that day
    (`scheduling.rules.same_time_weeks_later`; a start inside a spring-forward gap is
    refused, not shifted; it is listed at the first's UTC offset)."""
    starts = []
    for k in range(count):
        moment = core.same_time_weeks_later(first, zone, k * interval_weeks)
        if moment is None:
            starts.append((first + timedelta(weeks=k * interval_weeks), False))
        else:
            starts.append((moment, True))
    return starts


async def _slots_starting(
    session: AsyncSession, provider_id: uuid.UUID, starts: Sequence[datetime]
) -> dict[datetime, Slot]:
    query = select(Slot).where(
        Slot.provider_id == provider_id,
        Slot.start_time.in_(list(starts)),
        Slot.status != SlotStatus.REMOVED,
    )
    return {slot.start_time: slot for slot in (await session.scalars(query)).all()}


async def reserve_series(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    request: SeriesRequest,
    now: datetime,
) -> SeriesResult:
    """Hold every occurrence (`all`) or those that pass (`available`). The caller has
    locked the client's row (`clients.lock_client`). A series whose every week is free
    (of plain slots, or of a type without seats or a daily cap) is held by one statement
    on PostgreSQL (`series_statement`); any other goes step by step."""
    slot_id = parse_id(request.slot_id, "slot")
    if request.appointment_type_id is None:
        plain = BookingRules.plain(settings)
        done = await _in_one_statement(session, settings, client_id, request, slot_id, plain, now)
        if done is not None:
            return done
    anchor = await slots.get(session, slot_id)
    if anchor is None:
        raise NotFound(f"slot {request.slot_id!r} does not exist")
    # Kept until the end, as the series refers to it: its deletion racing us waits, or
    # came first, and this is the 404 of a series sent after it.
    provider = await providers_repository.get(session, anchor.provider_id, lock=RowLock.KEEP)
    if provider is None:
        raise NotFound(f"slot {request.slot_id!r} does not exist")
    if request.appointment_type_id is None:
        rules, zone = BookingRules.plain(settings), provider.timezone
    else:
        found = await appointment_types.get_with_timezone(
            session,
            anchor.provider_id,
            parse_id(request.appointment_type_id, "appointment type"),
        )
        if found is None:
            raise NotFound(f"appointment type {request.appointment_type_id!r} does not exist")
        kind, zone = found
        rules = BookingRules.of(kind, settings)
        done = await _in_one_statement(session, settings, client_id, request, slot_id, rules, now)
        if done is not None:
            return done
    if request.seats > 1 and not rules.books_sessions:
        core.check_session_has_room(1, request.seats)
    # The whole series is one hold against the limit, checked before anything is held.
    core.check_hold_limit(
        await holds.count_live_holds(session, client_id, now), settings.max_holds_per_client
    )
    starts = occurrence_starts(anchor.start_time, zone, request.interval_weeks, request.count)
    found_slots = await _slots_starting(session, anchor.provider_id, [s for s, _ in starts])
    expires_at = now + timedelta(seconds=settings.hold_seconds)
    series = Series(
        id=uuid.uuid4(),
        client_id=client_id,
        provider_id=anchor.provider_id,
        appointment_type_id=rules.type_id,
        interval_weeks=request.interval_weeks,
        count=request.count,
        policy=request.policy,
        first_start=anchor.start_time,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(series)
    await session.flush()
    # Every occurrence checked and its span locked first, set-based and in start order
    # (`reserve.claim_spans`); then the passing ones held together (weeks apart, no two
    # share a capped day).
    present = [(start, found_slots.get(start) if exists else None) for start, exists in starts]
    anchors = [slot for _, slot in present if slot is not None]
    if rules.books_sessions:
        # Seats: each occurrence joins or opens the session at its start.
        seating = sessions.Seating(
            settings,
            client_id,
            rules,
            zone,
            now,
            expires_at,
            request.seats,
            check_limit=False,
            series_id=series.id,
        )
        seated = await sessions.hold_occurrences(session, seating, anchors)
        held, refused = _sorted_out(present, seated, Reservation)
        await _check_first_still_there(session, anchor, refused, request.slot_id)
        _check_policy(request, refused, bool(held))
        return SeriesResult(series, held, skipped=refused)
    outcomes = await reserve.claim_spans(session, anchor.provider_id, rules, zone, anchors, now)
    claims, refused = _sorted_out(present, outcomes, spans.Claim)
    await _check_first_still_there(session, anchor, refused, request.slot_id)
    _check_policy(request, refused, bool(claims))
    held = await reserve.hold_claims(
        session, client_id, rules, claims, now, expires_at, series_id=series.id
    )
    return SeriesResult(series, held, skipped=refused)


async def _in_one_statement(
    session: AsyncSession,
    settings: Settings,
    client_id: uuid.UUID,
    request: SeriesRequest,
    slot_id: uuid.UUID,
    rules: BookingRules,
    now: datetime,
) -> SeriesResult | None:
    """The series held by one statement (PostgreSQL, the common case), or None when
    that statement wrote nothing (or cannot take it) and the steps below decide."""
    if (
        request.seats != 1
        or not series_statement.takes(rules)
        or session.get_bind().dialect.name != "postgresql"
    ):
        return None
    weekly = series_statement.Weekly(
        series_id=uuid.uuid4(),
        client_id=client_id,
        slot_id=slot_id,
        interval_weeks=request.interval_weeks,
        count=request.count,
        policy=request.policy,
        now=now,
        expires_at=now + timedelta(seconds=settings.hold_seconds),
        max_holds=settings.max_holds_per_client,
        rules=rules,
    )
    if not await series_statement.hold_every_week(session, weekly):
        return None
    made = await session.get(Series, weekly.series_id)
    assert made is not None  # written by the statement just now
    return SeriesResult(made, await _occurrences(session, made))


def _sorted_out(
    present: Sequence[tuple[datetime, Slot | None]],
    outcomes: Sequence[_Passed | DomainError],
    passed: type[_Passed],
) -> tuple[list[_Passed], list[Refusal]]:
    """Each occurrence's outcome (those with a slot, in order) as the passed ones and the
    refusals; an error that is not an occurrence's refusal fails the whole request."""
    remaining = iter(outcomes)
    passing: list[_Passed] = []
    refused: list[Refusal] = []
    for start, slot in present:
        outcome = next(remaining) if slot is not None else SlotUnavailable("no slot starts then")
        if isinstance(outcome, passed):
            passing.append(outcome)
        elif isinstance(outcome, sessions.OCCURRENCE_REFUSALS):
            refused.append(Refusal(start, outcome.code))
        else:
            assert isinstance(outcome, DomainError)
            raise outcome
    return passing, refused


async def _check_first_still_there(
    session: AsyncSession, anchor: Slot, refused: Sequence[Refusal], shown: str
) -> None:
    """The first occurrence refused because its slot went while we waited for its lock
    (withdrawn, or with its provider): the series is answered as one sent after that,
    404. Only a refused first occurrence pays the read."""
    if any(r.start_time == anchor.start_time for r in refused):
        if not await slots.still_there(session, anchor.id):
            raise NotFound(f"slot {shown!r} does not exist")


def _check_policy(request: SeriesRequest, refused: Sequence[Refusal], any_passed: bool) -> None:
    if refused and (request.policy is SeriesPolicy.ALL or not any_passed):
        # Raising rolls back the transaction: nothing of the series stays.
        raise SeriesConflict(
            f"{len(refused)} of {request.count} occurrence(s) cannot be booked",
            conflicts=[RefusalOut(start_time=r.start_time, code=r.code) for r in refused],
        )


async def _owned_series(
    session: AsyncSession, owner: Owner, series_id: str, lock: RowLock | None = None
) -> Series:
    """The owner's series or NotFound; a write keeps it (`RowLock.KEEP`): a deletion of
    the series with its client or provider waits, or came first and this is a 404."""
    series_uuid = parse_id(series_id, "series")
    query = select(Series).where(Series.id == series_uuid)
    if owner.client_id is not None:
        query = query.where(Series.client_id == owner.client_id)
    else:
        query = query.where(Series.provider_id == owner.provider_id)
    if lock is not None:
        query = lock.on(query)
    series = (await session.scalars(query)).one_or_none()
    if series is None:
        raise NotFound(f"series {series_id!r} does not exist")
    return series


async def _occurrences(session: AsyncSession, series: Series) -> Sequence[Reservation]:
    query = (
        select(Reservation)
        .where(Reservation.series_id == series.id)
        .order_by(Reservation.start_time, Reservation.id)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).all()


async def get_series(session: AsyncSession, owner: Owner, series_id: str) -> SeriesResult:
    series = await _owned_series(session, owner, series_id)
    return SeriesResult(series, await _occurrences(session, series))


async def confirm_series(
    session: AsyncSession, client_id: uuid.UUID, series_id: str, now: datetime
) -> SeriesResult:
    """Confirm every held occurrence at once, or none: they share one expiry, so either
    all are live or the hold ran out (409 `reservation_expired`). Confirming again
    changes nothing."""
    series = await _owned_series(session, Owner(client_id=client_id), series_id, RowLock.KEEP)
    result = await session.scalars(
        update(Reservation)
        .where(
            Reservation.series_id == series.id,
            Reservation.client_id == client_id,
            core.where(core.hold_live("reservations"), now),
        )
        .values(status=ReservationStatus.CONFIRMED, confirmed_at=now)
        .returning(Reservation.id)
        .execution_options(synchronize_session=False)
    )
    confirmed = result.all()
    if confirmed:
        await slots.mark_confirmed_many(session, confirmed)
        await sessions.settle_confirmed(session, confirmed)
        await outbox.record(session, EventType.CONFIRMED, confirmed, now)
    occurrences = await _occurrences(session, series)
    if not confirmed and any(r.status == ReservationStatus.HELD for r in occurrences):
        raise ReservationExpired("the series' hold ran out; book it again")
    return SeriesResult(series, occurrences)


async def cancel_series(
    session: AsyncSession,
    settings: Settings,
    owner: Owner,
    series_id: str,
    from_start_time: datetime | None,
    now: datetime,
    *,
    by_client: bool,
) -> SeriesResult:
    """Cancel the live occurrences starting at or after `from_start_time` (default:
    every one not yet started). A client is bound by the type's change notice: the
    occurrences inside it stay and are listed in `kept`."""
    series = await _owned_series(session, owner, series_id, RowLock.KEEP)
    since = max(from_start_time or now, now)
    occurrences = await _occurrences(session, series)
    chosen = [r for r in occurrences if r.start_time >= since and terms.is_live(r, now)]
    kept: list[Refusal] = []
    cancelling: list[uuid.UUID] = []
    for reservation in chosen:
        if by_client:
            rules = await terms.rules_of(session, settings, reservation)
            try:
                terms.check_change_notice(reservation, rules, now)
            except DomainError as refusal:
                kept.append(Refusal(reservation.start_time, refusal.code))
                continue
        cancelling.append(reservation.id)
    # Reservation rows, then slot rows: the one lock order.
    cancelled = await holds.cancel_many(session, cancelling, now)
    freed = await holds.unlink(session, [r.id for r in cancelled])
    await slots.release(session, freed)
    await outbox.record(session, EventType.CANCELLED, [r.id for r in cancelled], now)
    return SeriesResult(series, await _occurrences(session, series), kept=kept)
