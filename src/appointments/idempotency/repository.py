"""Queries on stored idempotent answers."""

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.db import conflict_insert
from appointments.idempotency.models import IdempotencyKey


async def claim(
    session: AsyncSession,
    scope_id: uuid.UUID,
    operation: str,
    key: str,
    request_hash: str,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Take the key for this request; False when someone already holds it.

    INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL a second request with the same
    key waits here until the first commits (then sees its answer) or rolls back
    (then takes the key itself), so the work is never done twice.
    """
    result = await session.execute(
        conflict_insert(session, IdempotencyKey)
        .values(
            scope_id=scope_id,
            operation=operation,
            key=key,
            request_hash=request_hash,
            created_at=now,
            expires_at=expires_at,
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    return result.first() is not None


def _the_key(scope_id: uuid.UUID, operation: str, key: str) -> tuple[ColumnElement[bool], ...]:
    """The row of one key (the primary key's three columns)."""
    return (
        IdempotencyKey.scope_id == scope_id,
        IdempotencyKey.operation == operation,
        IdempotencyKey.key == key,
    )


async def get(
    session: AsyncSession, scope_id: uuid.UUID, operation: str, key: str
) -> IdempotencyKey | None:
    query = select(IdempotencyKey).where(*_the_key(scope_id, operation, key))
    return (await session.scalars(query)).one_or_none()


async def take_over_expired(
    session: AsyncSession,
    scope_id: uuid.UUID,
    operation: str,
    key: str,
    request_hash: str,
    now: datetime,
    expires_at: datetime,
) -> bool:
    """Take a key whose stored answer has expired, as if it were new; False when it has
    not expired (or is gone).

    One conditional UPDATE: of concurrent retries with an expired key, exactly one
    matches the row; on PostgreSQL the others wait on its row lock, re-check, find it
    no longer expired and read its answer (or find it in flight) instead.
    """
    result = await session.execute(
        update(IdempotencyKey)
        .where(*_the_key(scope_id, operation, key), IdempotencyKey.expires_at <= now)
        .values(
            request_hash=request_hash,
            created_at=now,
            expires_at=expires_at,
            status_code=None,
            response_body=None,
        )
        .returning(IdempotencyKey.key)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None


async def store_answer(
    session: AsyncSession,
    scope_id: uuid.UUID,
    operation: str,
    key: str,
    status_code: int,
    body: str,
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(*_the_key(scope_id, operation, key))
        .values(status_code=status_code, response_body=body)
        .execution_options(synchronize_session=False)
    )


async def delete_expired(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
