"""Queries on appointment types. Every statement is scoped by provider."""

import uuid
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.appointment_types.models import AppointmentType
from appointments.db import RowLock
from appointments.pagination import PageRequest
from appointments.providers.models import Provider


async def get(
    session: AsyncSession,
    provider_id: uuid.UUID,
    type_id: uuid.UUID,
    *,
    include_deleted: bool = False,
    lock: RowLock | None = None,
) -> AppointmentType | None:
    """The provider's type; with `lock`, its row locked so until the transaction ends
    (which also holds off the provider's deletion, whose cascade must lock it)."""
    query = select(AppointmentType).where(
        AppointmentType.id == type_id, AppointmentType.provider_id == provider_id
    )
    if not include_deleted:
        query = query.where(AppointmentType.deleted_at.is_(None))
    if lock is not None:
        query = lock.on(query)
    return (await session.scalars(query)).one_or_none()


async def get_with_timezone(
    session: AsyncSession, provider_id: uuid.UUID, type_id: uuid.UUID
) -> tuple[AppointmentType, str] | None:
    """A live type of the provider, with the provider's time zone (its days, for the cap)."""
    query = (
        select(AppointmentType, Provider.timezone)
        .join(Provider, Provider.id == AppointmentType.provider_id)
        .where(
            AppointmentType.id == type_id,
            AppointmentType.provider_id == provider_id,
            AppointmentType.deleted_at.is_(None),
        )
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def page(
    session: AsyncSession, provider_id: uuid.UUID, request: PageRequest
) -> Sequence[AppointmentType]:
    """The provider's types by (created_at, id), one extra row for look-ahead."""
    query = select(AppointmentType).where(
        AppointmentType.provider_id == provider_id, AppointmentType.deleted_at.is_(None)
    )
    if request.after is not None:
        at, last_id = request.after.at, request.after.id
        query = query.where(
            AppointmentType.created_at >= at,
            or_(AppointmentType.created_at > at, AppointmentType.id > last_id),
        )
    query = query.order_by(AppointmentType.created_at, AppointmentType.id)
    return (await session.scalars(query.limit(request.limit + 1))).all()
