"""Set-based seeding straight in SQL (generate_series), so set-up stays seconds."""

import uuid
from datetime import datetime

import asyncpg

BASE = "date_trunc('day', now()) + interval '3 days'"


async def providers(
    db: asyncpg.Connection, count: int, prefix: str, zone: str = "UTC"
) -> list[str]:
    rows = await db.fetch(
        "INSERT INTO providers SELECT gen_random_uuid(), $1 || i, NULL, $3, now(), now() "
        "FROM generate_series(1, $2) i RETURNING id",
        prefix,
        count,
        zone,
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


async def busy_hours(db: asyncpg.Connection, provider_id: str, base: datetime, count: int) -> int:
    """`count` one-hour busy intervals of another calendar of the provider, one every
    five hours from `base`, and its slots' busy flags as a read writes them (set-based
    here). Returns how many of the provider's slots are busy."""
    calendar = uuid.uuid4()
    await db.execute(
        "INSERT INTO calendars (id, provider_id, kind, url, write_bookings, status, busy_count,"
        " sync_due_at, created_at, updated_at) VALUES ($1, $2, 'ics', 'https://x', false,"
        " 'ok', $3, now() + interval '1 year', now(), now())",
        calendar,
        uuid.UUID(provider_id),
        count,
    )
    await db.execute(
        "INSERT INTO busy_intervals (id, calendar_id, provider_id, start_time, end_time)"
        " SELECT gen_random_uuid(), $1, $2, $3::timestamptz + i * interval '5 hours',"
        " $3::timestamptz + i * interval '5 hours' + interval '1 hour'"
        " FROM generate_series(0, $4 - 1) AS i",
        calendar,
        uuid.UUID(provider_id),
        base,
        count,
    )
    await db.execute(
        "UPDATE slots AS s SET busy = true FROM busy_intervals AS b"
        " WHERE b.calendar_id = $1 AND s.provider_id = b.provider_id"
        " AND s.start_time < b.end_time AND s.end_time > b.start_time",
        calendar,
    )
    busy: int = await db.fetchval(
        "SELECT count(*) FROM slots WHERE busy AND provider_id = $1", uuid.UUID(provider_id)
    )
    return busy
