"""Rules for clients: create, read, replace, delete (releasing what they held)."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from appointments.clients import repository
from appointments.clients.models import Client
from appointments.clients.schemas import ClientIn
from appointments.db import RowLock
from appointments.errors import NotFound
from appointments.ids import parse_id
from appointments.pagination import PageRequest
from appointments.scheduling import holds, slots


async def create_client(session: AsyncSession, data: ClientIn, now: datetime) -> Client:
    client = Client(id=uuid.uuid4(), created_at=now, updated_at=now, **data.model_dump())
    session.add(client)
    await session.flush()
    return client


async def get_client(
    session: AsyncSession, client_id: str, *, lock: RowLock | None = None
) -> Client:
    """The client or NotFound, its row locked as `lock` says (`EDIT` serialises this
    client's writes)."""
    client = await repository.get(session, parse_id(client_id, "client"), lock=lock)
    if client is None:
        raise NotFound(f"client {client_id!r} does not exist")
    return client


async def lock_client(session: AsyncSession, client_id: str) -> uuid.UUID:
    """Serialise this client's concurrent writes (hold limit); NotFound if it does not exist."""
    client_uuid = parse_id(client_id, "client")
    if not await repository.lock(session, client_uuid):
        raise NotFound(f"client {client_id!r} does not exist")
    return client_uuid


async def list_clients(session: AsyncSession, request: PageRequest) -> Sequence[Client]:
    return await repository.page(session, request)


async def replace_client(
    session: AsyncSession, client_id: str, data: ClientIn, now: datetime
) -> Client:
    client = await get_client(session, client_id, lock=RowLock.EDIT)
    for field, value in data.model_dump().items():
        setattr(client, field, value)
    client.updated_at = now
    await session.flush()
    return client


async def delete_client(session: AsyncSession, client_id: str, now: datetime) -> None:
    """Delete a client; the slots its live reservations occupied become available again.

    Lock order as in reserve: the client row, its reservations, then their slots,
    so a concurrent reserve cannot deadlock with us.
    """
    client = await get_client(session, client_id, lock=RowLock.EDIT)
    freed = await holds.cancel_live_of_client(session, client.id, now)
    await slots.release(session, freed)
    await session.delete(client)
    await session.flush()
