"""Queries on reservations. Lock order everywhere: reservation rows first, then slot rows."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    TextClause,
    Uuid,
    and_,
    bindparam,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.clients.models import Client
from appointments.db import UTCDateTime
from appointments.pagination import PageRequest
from appointments.providers.models import Provider
from appointments.scheduling import holds, rules
from appointments.scheduling.models import (
    Reservation,
    ReservationStatus,
)


@dataclass(frozen=True)
class Owner:
    """Whose reservations a query may see: one client's, or one provider's."""

    client_id: uuid.UUID | None = None
    provider_id: uuid.UUID | None = None

    def condition(self) -> ColumnElement[bool]:
        if self.client_id is not None:
            return Reservation.client_id == self.client_id
        assert self.provider_id is not None
        return Reservation.provider_id == self.provider_id


def has_status(status: ReservationStatus, now: datetime) -> ColumnElement[bool] | TextClause:
    """The status as answers report it: a run-out hold is `expired`."""
    if status is ReservationStatus.HELD:
        return rules.where(rules.hold_live("reservations"), now)
    if status is ReservationStatus.EXPIRED:
        return or_(Reservation.status == status, holds.ran_out(now))
    return Reservation.status == status


async def get_owned(
    session: AsyncSession, owner: Owner, reservation_id: uuid.UUID
) -> Reservation | None:
    query = select(Reservation).where(Reservation.id == reservation_id, owner.condition())
    return (await session.scalars(query)).one_or_none()


async def cancel_if_live(
    session: AsyncSession, owner: Owner, reservation_id: uuid.UUID, now: datetime
) -> Reservation | None:
    """Cancel the reservation if, and only if, it is the owner's and still live."""
    result = await session.scalars(
        update(Reservation)
        .where(Reservation.id == reservation_id, owner.condition(), holds.is_live(now))
        .values(status=ReservationStatus.CANCELLED, cancelled_at=now)
        .returning(Reservation)
        .execution_options(synchronize_session=False)
    )
    return result.one_or_none()


async def page(
    session: AsyncSession,
    owner: Owner,
    *,
    status: ReservationStatus | None,
    start_from: datetime | None,
    start_before: datetime | None,
    now: datetime,
    request: PageRequest,
) -> Sequence[Reservation]:
    """The owner's reservations by (start_time, id), one extra row for look-ahead."""
    query = select(Reservation).where(owner.condition())
    if status is not None:
        query = query.where(has_status(status, now))
    if start_from is not None:
        query = query.where(Reservation.start_time >= start_from)
    if start_before is not None:
        query = query.where(Reservation.start_time < start_before)
    if request.after is not None:
        at, last_id = request.after.at, request.after.id
        query = query.where(
            Reservation.start_time >= at,
            or_(Reservation.start_time > at, Reservation.id > last_id),
        )
    query = query.order_by(Reservation.start_time, Reservation.id).limit(request.limit + 1)
    return (await session.scalars(query)).all()


async def get_of_client(
    session: AsyncSession, reservation_id: uuid.UUID, client_id: uuid.UUID
) -> Reservation | None:
    query = select(Reservation).where(
        Reservation.id == reservation_id, Reservation.client_id == client_id
    )
    return (await session.scalars(query)).one_or_none()


def _with_counterpart(owner: Owner) -> Select[tuple[Reservation, str]]:
    """The owner's reservations with the other party's name (the provider's for a
    client, the client's for a provider)."""
    if owner.client_id is not None:
        query = select(Reservation, Provider.name).join(
            Provider, Provider.id == Reservation.provider_id
        )
    else:
        query = select(Reservation, Client.name).join(Client, Client.id == Reservation.client_id)
    return query.where(owner.condition()).order_by(Reservation.start_time, Reservation.id)


def _calendar_rows(
    owner: Owner,
) -> Select[tuple[uuid.UUID, str, datetime, datetime, str, uuid.UUID | None, int]]:
    """Confirmed bookings, and cancelled ones that had been confirmed, as plain rows
    (a feed of 10^5 bookings is built without an ORM object per row) with the other
    party's name."""
    counterpart = Provider.name if owner.client_id is not None else Client.name
    joined = Provider if owner.client_id is not None else Client
    key = Reservation.provider_id if owner.client_id is not None else Reservation.client_id
    return (
        select(
            Reservation.id,
            Reservation.status,
            Reservation.start_time,
            Reservation.end_time,
            counterpart.label("counterpart"),
            Reservation.session_id,
            Reservation.seats,
        )
        .join(joined, joined.id == key)
        .where(
            owner.condition(),
            or_(
                Reservation.status == ReservationStatus.CONFIRMED,
                and_(
                    Reservation.status == ReservationStatus.CANCELLED,
                    Reservation.confirmed_at.is_not(None),
                ),
            ),
        )
    )


async def calendar_bookings(
    session: AsyncSession, owner: Owner, now: datetime, since: datetime, past_limit: int
) -> Sequence[Any]:
    """The owner's bookings for a calendar feed, by start time: every one that has not
    ended (none is ever left out), after the latest `past_limit` that ended since
    `since`. Both walk the owner's (start_time, id) index."""
    past = (
        _calendar_rows(owner)
        .where(Reservation.end_time <= now, Reservation.start_time >= since)
        .order_by(Reservation.start_time.desc(), Reservation.id.desc())
        .limit(past_limit)
    )
    upcoming = (
        _calendar_rows(owner)
        .where(Reservation.end_time > now)
        .order_by(Reservation.start_time, Reservation.id)
    )
    earlier = list(reversed((await session.execute(past)).all()))
    return earlier + list((await session.execute(upcoming)).all())


async def live_with_counterpart(
    session: AsyncSession,
    owner: Owner,
    now: datetime,
    start_from: datetime,
    start_before: datetime | None,
    limit: int,
) -> Sequence[tuple[Reservation, str]]:
    """Live reservations (confirmed, or held and not run out) starting in the range."""
    query = _with_counterpart(owner).where(holds.is_live(now), Reservation.start_time >= start_from)
    if start_before is not None:
        query = query.where(Reservation.start_time < start_before)
    return [(row[0], row[1]) for row in (await session.execute(query.limit(limit))).all()]


@dataclass(frozen=True)
class CappedDay:
    """The day (in the provider's zone) of a capped type's appointment starting at `start`."""

    provider_id: uuid.UUID
    type_id: uuid.UUID
    start: datetime
    zone: str
    cap: int

    def binds(self, now: datetime) -> list[BindParameter[Any]]:
        return [
            bindparam("provider_id", self.provider_id, type_=Uuid()),
            bindparam("type_id", self.type_id, type_=Uuid()),
            bindparam("start", self.start, type_=UTCDateTime()),
            bindparam("zone", self.zone),
            bindparam("cap", self.cap),
            bindparam("now", now, type_=UTCDateTime()),
        ]


def _start(dialect: str) -> str:
    # PostgreSQL must know the parameter is a timestamptz before AT TIME ZONE; on
    # SQLite a CAST would turn the stored text into a number.
    return "CAST(:start AS timestamptz)" if dialect == "postgresql" else ":start"


async def lock_day(session: AsyncSession, day: CappedDay) -> None:
    """Serialise bookings of one appointment type on one day of the provider's calendar
    (the daily cap) across processes on PostgreSQL; SQLite's writers are serialised by
    BEGIN IMMEDIATE. The day is `scheduling.rules.local_day`, computed by PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        day_start, _ = rules.local_day("postgresql", _start("postgresql"))
        key = f"'daily-cap:' || :type_id_text || ':' || extract(epoch FROM {day_start})::text"
        await session.execute(
            text(f"SELECT pg_advisory_xact_lock(hashtextextended({key}, 0))").bindparams(
                bindparam("start", day.start, type_=UTCDateTime()),
                bindparam("zone", day.zone),
                bindparam("type_id_text", str(day.type_id)),
            )
        )


async def day_has_room(
    session: AsyncSession, day: CappedDay, now: datetime, *, excluding: uuid.UUID | None = None
) -> bool:
    """`scheduling.rules.day_has_room`: fewer than the cap of live appointments of the
    type on the provider's day (not counting reservation `excluding`)."""
    dialect = session.get_bind().dialect.name
    fragment = rules.day_has_room(
        dialect, _start(dialect), excluding=":excluding" if excluding is not None else None
    )
    query = text(f"SELECT {fragment}").bindparams(*day.binds(now))
    if excluding is not None:
        query = query.bindparams(bindparam("excluding", excluding, type_=Uuid()))
    return bool(await session.scalar(query))
