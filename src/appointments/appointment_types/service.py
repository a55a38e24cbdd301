"""Rules for appointment types: create, read, replace, delete, and their bookable start times."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types import repository, start_times
from appointments.appointment_types.errors import CapacityBelowBooked
from appointments.appointment_types.models import AppointmentType
from appointments.appointment_types.rules import BookingRules
from appointments.appointment_types.schemas import AppointmentTypeIn
from appointments.db import RowLock
from appointments.errors import NotFound, ValidationFailed
from appointments.ids import parse_id
from appointments.pagination import PageRequest
from appointments.providers import service as providers
from appointments.scheduling import holds, seats
from appointments.settings import Settings


def _check_terms(data: AppointmentTypeIn, settings: Settings) -> None:
    """The rules that depend on the service's settings (the schema checks the rest)."""
    slot = settings.slot_minutes
    for field in ("duration_minutes", "buffer_before_minutes", "buffer_after_minutes"):
        if getattr(data, field) % slot:
            raise ValidationFailed(f"{field} must be a multiple of the {slot}-minute slot length")
    if data.min_notice_minutes is not None and data.min_notice_minutes * 60 < (
        settings.min_notice_seconds
    ):
        service_minutes = settings.min_notice_seconds / 60
        raise ValidationFailed(
            f"min_notice_minutes must be at least the service's own notice "
            f"({service_minutes:g} minutes); use null for exactly that"
        )


async def create_type(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    data: AppointmentTypeIn,
    now: datetime,
) -> AppointmentType:
    provider = await providers.get_provider(session, provider_id, lock=RowLock.KEEP)
    _check_terms(data, settings)
    kind = AppointmentType(
        id=uuid.uuid4(),
        provider_id=provider.id,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        **data.model_dump(),
    )
    session.add(kind)
    await session.flush()
    return kind


async def _type_not_found(session: AsyncSession, provider_id: str, type_id: str) -> NoReturn:
    await providers.get_provider(session, provider_id)  # an unknown provider says so
    raise NotFound(f"appointment type {type_id!r} does not exist")


async def get_type(
    session: AsyncSession,
    provider_id: str,
    type_id: str,
    *,
    include_deleted: bool = False,
    lock: RowLock | None = None,
) -> AppointmentType:
    """The provider's type or NotFound (another provider's type is reported as missing);
    `lock` as `repository.get`."""
    provider_uuid = parse_id(provider_id, "provider")
    type_uuid = parse_id(type_id, "appointment type")
    kind = await repository.get(
        session, provider_uuid, type_uuid, include_deleted=include_deleted, lock=lock
    )
    if kind is None:
        await _type_not_found(session, provider_id, type_id)
    return kind


async def list_types(
    session: AsyncSession, provider_id: str, request: PageRequest
) -> Sequence[AppointmentType]:
    provider = await providers.get_provider(session, provider_id)
    return await repository.page(session, provider.id, request)


async def replace_type(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    type_id: str,
    data: AppointmentTypeIn,
    now: datetime,
) -> AppointmentType:
    """Replace a type; booked appointments keep their times (new terms apply to new bookings
    and to rescheduling)."""
    kind = await get_type(session, provider_id, type_id, lock=RowLock.EDIT)
    _check_terms(data, settings)
    if data.capacity != kind.capacity:
        await _change_capacity(session, kind, data.capacity, now)
    for field, value in data.model_dump().items():
        setattr(kind, field, value)
    kind.updated_at = now
    await session.flush()
    return kind


async def _change_capacity(
    session: AsyncSession, kind: AppointmentType, capacity: int, now: datetime
) -> None:
    """The type's live future sessions take the new capacity, or (when one has more seats
    taken than that) nothing changes: 409 `capacity_below_booked`. One conditional
    UPDATE of the sessions' rows: a seat taken meanwhile waits for it or is refused."""
    await holds.expire_run_out_seats_at(session, kind.provider_id, kind.id, None, now)
    crowded = await seats.resize(session, kind.provider_id, kind.id, capacity, now)
    if crowded:
        raise CapacityBelowBooked(
            f"a live future session of this type has more than {capacity} seat(s) taken",
            sessions=[str(session_id) for session_id in crowded],
        )


async def delete_type(session: AsyncSession, provider_id: str, type_id: str, now: datetime) -> None:
    """Withdraw a type from booking; appointments already booked keep their times."""
    kind = await get_type(session, provider_id, type_id, lock=RowLock.EDIT)
    kind.deleted_at = now
    kind.updated_at = now
    await session.flush()


async def bookable_start_times(
    session: AsyncSession,
    settings: Settings,
    provider_id: str,
    type_id: str,
    *,
    start_from: datetime | None,
    start_before: datetime | None,
    now: datetime,
    request: PageRequest,
    repeat: start_times.Repeat | None = None,
) -> tuple[BookingRules, list[start_times.StartTime]]:
    """One page of the type's bookable start times (plus one row of look-ahead)."""
    provider_uuid = parse_id(provider_id, "provider")
    type_uuid = parse_id(type_id, "appointment type")
    found = await repository.get_with_timezone(session, provider_uuid, type_uuid)
    if found is None:
        await _type_not_found(session, provider_id, type_id)
    kind, zone = found
    rules = BookingRules.of(kind, settings)
    search = start_times.search_for(rules, zone, start_from, start_before, now, repeat)
    rows = await start_times.find(
        session, provider_uuid, rules, search, now, limit=request.limit + 1, cursor=request.after
    )
    return rules, rows
