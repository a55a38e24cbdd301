"""Set-based seeding straight in SQL (generate_series), so set-up stays seconds."""

import asyncpg

BASE = "date_trunc('day', now()) + interval '3 days'"


async def providers(db: asyncpg.Connection, count: int, prefix: str) -> list[str]:
    rows = await db.fetch(
        "INSERT INTO providers SELECT gen_random_uuid(), $1 || i, NULL, 'UTC', now(), now() "
        "FROM generate_series(1, $2) i RETURNING id",
        prefix,
        count,
    )
    return [str(r["id"]) for r in rows]


async def clients(db: asyncpg.Connection, count: int, prefix: str) -> list[str]:
    rows = await db.fetch(
        "INSERT INTO clients SELECT gen_random_uuid(), $1 || i, $1 || i || '@example.com', "
        "NULL, now() + i * interval '1 microsecond', now() FROM generate_series(1, $2) i "
        "RETURNING id",
        prefix,
        count,
    )
    return [str(r["id"]) for r in rows]


async def slots(db: asyncpg.Connection, provider_id: str, count: int, offset: int = 0) -> list[str]:
    """`count` consecutive free slots of one provider, starting `offset` slots after BASE."""
    rows = await db.fetch(
        f"INSERT INTO slots (id, provider_id, start_time, end_time, status) "
        f"SELECT gen_random_uuid(), $1::uuid, {BASE} + i * interval '15 minutes', "
        f"{BASE} + (i + 1) * interval '15 minutes', 'available' "
        f"FROM generate_series($2::int, $3::int) i RETURNING id",
        provider_id,
        offset,
        offset + count - 1,
    )
    return [str(r["id"]) for r in rows]


async def stale_holds(
    db: asyncpg.Connection, provider_id: str, client_ids: list[str], count: int
) -> None:
    """`count` reserved slots whose holds ran out an hour ago, with their reservations."""
    await holds(db, provider_id, client_ids, count, expired=True)


async def holds(
    db: asyncpg.Connection,
    provider_id: str,
    client_ids: list[str],
    count: int,
    *,
    expired: bool,
) -> None:
    """`count` consecutive reserved slots from BASE on, with their held reservations:
    run out an hour ago, or running for another 30 minutes."""
    expires = "now() - interval '1 hour'" if expired else "now() + interval '30 minutes'"
    await db.execute(
        f"""
        WITH new_slots AS (
            INSERT INTO slots (id, provider_id, start_time, end_time, status, hold_expires_at)
            SELECT gen_random_uuid(), $1::uuid, {BASE} + i * interval '15 minutes',
                   {BASE} + (i + 1) * interval '15 minutes', 'reserved', {expires}
            FROM generate_series(0, $2::int - 1) i
            RETURNING id, start_time, end_time
        ), new_holds AS (
            INSERT INTO reservations (id, slot_id, provider_id, client_id, status, start_time,
                                      end_time, occupied_start, occupied_end, created_at,
                                      expires_at)
            SELECT gen_random_uuid(), s.id, $1::uuid,
                   ($3::uuid[])[1 + (row_number() OVER () % array_length($3::uuid[], 1))],
                   'held', s.start_time, s.end_time, s.start_time, s.end_time,
                   now() - interval '2 hours', {expires}
            FROM new_slots s
            RETURNING id, slot_id
        )
        -- The slot each hold occupies, as the service records it.
        INSERT INTO reservation_slots (reservation_id, slot_id, provider_id)
        SELECT id, slot_id, $1::uuid FROM new_holds
        """,
        provider_id,
        count,
        client_ids,
    )


async def appointment_type(
    db: asyncpg.Connection, provider_id: str, duration: int, buffer_after: int
) -> str:
    """One appointment type of the provider (no notice, horizon or cap of its own)."""
    row = await db.fetchrow(
        "INSERT INTO appointment_types (id, provider_id, name, duration_minutes, "
        "buffer_before_minutes, buffer_after_minutes, change_notice_minutes, created_at, "
        "updated_at) VALUES (gen_random_uuid(), $1::uuid, 'Consultation', $2, 0, $3, 0, "
        "now(), now()) RETURNING id",
        provider_id,
        duration,
        buffer_after,
    )
    assert row is not None
    return str(row["id"])
