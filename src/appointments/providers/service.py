"""Rules for providers: create, read, replace, delete (refused while bookings are live)."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from appointments.db import RowLock
from appointments.errors import NotFound
from appointments.ids import parse_id
from appointments.pagination import PageRequest
from appointments.providers import repository
from appointments.providers.models import Provider
from appointments.providers.schemas import ProviderIn
from appointments.scheduling import holds, outbox, slots
from appointments.scheduling.conflicts import AvailabilityConflict, conflict_of
from appointments.scheduling.events import EventType

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


async def create_provider(session: AsyncSession, data: ProviderIn, now: datetime) -> Provider:
    provider = Provider(id=uuid.uuid4(), created_at=now, updated_at=now, **data.model_dump())
    session.add(provider)
    await session.flush()
    return provider


async def get_provider(
    session: AsyncSession, provider_id: str, *, lock: RowLock | None = None
) -> Provider:
    """The provider or NotFound, its row locked as `lock` says: `KEEP` for a write that
    adds to or changes what is the provider's (a deletion racing it waits, or came
    first and this answers 404), `EDIT` for edits of the provider or its availability,
    which run one at a time."""
    provider = await repository.get(session, parse_id(provider_id, "provider"), lock=lock)
    if provider is None:
        raise NotFound(f"provider {provider_id!r} does not exist")
    return provider


async def list_providers(session: AsyncSession, request: PageRequest) -> Sequence[Provider]:
    return await repository.page(session, request)


async def replace_provider(
    session: AsyncSession, provider_id: str, data: ProviderIn, now: datetime
) -> Provider:
    provider = await get_provider(session, provider_id, lock=RowLock.EDIT)
    for field, value in data.model_dump().items():
        setattr(provider, field, value)
    provider.updated_at = now
    await session.flush()
    return provider


async def delete_provider(
    session: AsyncSession, provider_id: str, now: datetime, *, cancel_conflicts: bool = False
) -> None:
    """Delete a provider with its slots, unless a future slot is held or confirmed.

    The free slots go first, with a conditional delete: a reserve racing with us
    either claimed its slot before (so the slot survives and we refuse) or finds
    it gone. What survives and is booked in the future makes the answer 409,
    listing each booking, unless `cancel_conflicts` cancels them too.
    """
    # EDIT, not DELETE, until the row goes: a reserve holding a slot lock still
    # passes its foreign-key check on this row, so it never waits for us while we wait
    # for its slot.
    provider = await get_provider(session, provider_id, lock=RowLock.EDIT)
    # Lock order everywhere: reservation rows, then slot rows. Deleting a slot deletes
    # its reservations (ON DELETE CASCADE), so every one that a cancel, a move or the
    # sweeper could be changing is locked before any slot goes.
    await holds.lock_every_held_or_confirmed(session, provider.id)
    await slots.delete_free_slots(session, provider.id, now)
    booked = await holds.live_in_range(session, provider.id, now, FAR_FUTURE, now)
    if booked and not cancel_conflicts:
        raise AvailabilityConflict(
            f"provider has {len(booked)} future held or confirmed booking(s); cancel them "
            "first or pass cancel_conflicts=true",
            conflicts=[conflict_of(r, now) for r in booked],
        )
    # Its slots and their reservations go with it (ON DELETE CASCADE); the bookings it
    # had are told first, in the same transaction.
    cancelled = await holds.cancel_many(session, [r.id for r in booked], now)
    await outbox.record(session, EventType.CANCELLED, [r.id for r in cancelled], now)
    await session.delete(provider)
    await session.flush()
