"""Queries on clients."""

import uuid
from collections.abc import Sequence

from sqlalchemy import Uuid, bindparam, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.clients.models import Client
from appointments.db import RowLock
from appointments.pagination import PageRequest


async def get(
    session: AsyncSession, client_id: uuid.UUID, *, lock: RowLock | None = None
) -> Client | None:
    """The client; locked as `lock` says until the transaction ends."""
    flags = None if lock is None else lock.options
    return await session.get(Client, client_id, with_for_update=flags)


# Built once: this runs before every reserve, and a prepared text statement skips
# building and compiling an ORM query each time. SQLite has no row locks; its
# writers are serialised by BEGIN IMMEDIATE.
_LOCK = {
    dialect: text(f"SELECT id FROM clients WHERE id = :id{suffix}").bindparams(
        bindparam("id", type_=Uuid())
    )
    for dialect, suffix in (("postgresql", " FOR NO KEY UPDATE"), ("sqlite", ""))
}


async def lock(session: AsyncSession, client_id: uuid.UUID) -> bool:
    """Lock the client's row (`RowLock.EDIT`) without loading an ORM object."""
    statement = _LOCK[session.get_bind().dialect.name]
    return (await session.execute(statement, {"id": client_id})).first() is not None


async def page(session: AsyncSession, request: PageRequest) -> Sequence[Client]:
    """One more row than asked for, so the caller knows whether a next page exists."""
    query = select(Client).order_by(Client.created_at, Client.id).limit(request.limit + 1)
    if request.after is not None:
        at, last_id = request.after.at, request.after.id
        query = query.where(
            Client.created_at >= at, or_(Client.created_at > at, Client.id > last_id)
        )
    return (await session.scalars(query)).all()
