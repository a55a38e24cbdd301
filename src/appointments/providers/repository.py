"""Queries on providers."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.db import RowLock
from appointments.pagination import PageRequest
from appointments.providers.models import Provider


async def get(
    session: AsyncSession, provider_id: uuid.UUID, *, lock: RowLock | None = None
) -> Provider | None:
    """The provider; locked as `lock` says until the transaction ends."""
    flags = None if lock is None else lock.options
    return await session.get(Provider, provider_id, with_for_update=flags)


async def page(session: AsyncSession, request: PageRequest) -> Sequence[Provider]:
    """One more row than asked for, so the caller knows whether a next page exists."""
    query = select(Provider).order_by(Provider.created_at, Provider.id).limit(request.limit + 1)
    if request.after is not None:
        at, last_id = request.after.at, request.after.id
        query = query.where(
            Provider.created_at >= at,
            (Provider.created_at > at) | (Provider.id > last_id),
        )
    return (await session.scalars(query)).all()
