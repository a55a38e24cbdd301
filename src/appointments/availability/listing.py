"""A page of a provider's slots, built by the database as JSON in one statement.

The listing is what every visitor of a booking page asks for, many times per
reserve. Building it from ORM objects and per-slot models cost Python ten times
what the query cost PostgreSQL, so here the database answers everything at once:
whether the provider exists, the page's items as JSON text (concatenated and
`string_agg`-ed, see rawsql; `json_group_array` on SQLite), and the key of the
page's last item for the cursor.
On PostgreSQL the statement goes straight to asyncpg, outside any transaction (a
single statement is consistent on its own), so there is no BEGIN and no COMMIT.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from appointments import rawsql
from appointments.availability.schemas import SlotFilter
from appointments.pagination import Keyset, PageRequest, page_body
from appointments.scheduling import rules

_POSTGRES_ITEMS = rawsql.json_array(
    rawsql.json_object(
        [
            ("id", "id"),
            ("provider_id", "provider_id"),
            ("start_time", rawsql.utc_text("start_time")),
            ("end_time", rawsql.utc_text("end_time")),
            ("status", "shown"),
        ]
    ),
    "n",
)
# SQLite stores ids as 32 hex digits and times as naive UTC text (see db.UTCDateTime);
# its aggregate keeps the order of the subquery it reads.
_SQLITE_ID = (
    "substr({0},1,8)||'-'||substr({0},9,4)||'-'||substr({0},13,4)||'-'||"
    "substr({0},17,4)||'-'||substr({0},21)"
)
_SQLITE_TIME = "strftime('%Y-%m-%dT%H:%M:%SZ', {})"
_SQLITE_ITEMS = (
    "coalesce(json_group_array(json(item)), '[]') FROM (SELECT json_object("
    f"'id', {_SQLITE_ID.format('id')}, 'provider_id', {_SQLITE_ID.format('provider_id')}, "
    f"'start_time', {_SQLITE_TIME.format('start_time')}, "
    f"'end_time', {_SQLITE_TIME.format('end_time')}, 'status', shown) AS item "
    "FROM page WHERE n <= :limit ORDER BY n)"
)
# Per dialect: the page's items as JSON text, and the last item's id as text.
_DIALECTS = {
    "postgresql": (f"{_POSTGRES_ITEMS} FROM page WHERE n <= :limit", "id::text"),
    "sqlite": (_SQLITE_ITEMS, "id"),
}

_FILTERS = {
    SlotFilter.AVAILABLE: f"{rules.starts_bookable()} AND {rules.slot_open()}",
    SlotFilter.RESERVED: rules.slot_held(),
    SlotFilter.CONFIRMED: "status = 'confirmed'",
    SlotFilter.ALL: "status <> 'removed'",
}


def _statement(dialect: str, status: SlotFilter, clauses: list[str]) -> str:
    where = " AND ".join(["provider_id = :provider", _FILTERS[status], *clauses])
    items, last_id = _DIALECTS[dialect]
    return f"""
WITH page AS (
    SELECT id, provider_id, start_time, end_time,
           {rules.slot_shown_status()} AS shown,
           row_number() OVER (ORDER BY start_time, id) AS n
      FROM slots
     WHERE {where}
     ORDER BY start_time, id
     LIMIT :rows
)
SELECT EXISTS (SELECT 1 FROM providers WHERE id = :provider) AS known,
       (SELECT {items}) AS items,
       (SELECT count(*) FROM page) AS found,
       (SELECT start_time FROM page WHERE n = :limit) AS last_at,
       (SELECT {last_id} FROM page WHERE n = :limit) AS last_id
"""


def _clauses(start_from: bool, start_before: bool, after: bool) -> list[str]:
    clauses = []
    if start_from:
        clauses.append("start_time >= :start_from")
    if start_before:
        clauses.append("start_time < :start_before")
    if after:
        clauses.append("start_time >= :after_at AND (start_time > :after_at OR id > :after_id)")
    return clauses


@dataclass(frozen=True)
class Query:
    status: SlotFilter
    start_from: datetime | None
    start_before: datetime | None
    bookable_after: datetime
    now: datetime
    request: PageRequest


def _named(query: Query, provider_id: uuid.UUID) -> dict[str, object]:
    after = query.request.after
    values: dict[str, object] = {
        "provider": provider_id,
        "now": query.now,
        "rows": query.request.limit + 1,
        "limit": query.request.limit,
        "bookable_after": query.bookable_after,
        "start_from": query.start_from,
        "start_before": query.start_before,
        "after_at": after.at if after else None,
        "after_id": after.id if after else None,
    }
    return values


_CACHE: dict[tuple[str, SlotFilter, bool, bool, bool], str] = {}


def _sql(dialect: str, query: Query) -> str:
    shape = (
        dialect,
        query.status,
        query.start_from is not None,
        query.start_before is not None,
        query.request.after is not None,
    )
    sql = _CACHE.get(shape)
    if sql is None:
        sql = _CACHE[shape] = _statement(dialect, query.status, _clauses(*shape[2:]))
    return sql


def _sqlite_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, uuid.UUID):
        return value.hex
    return value


def statement(dialect: str, provider_id: uuid.UUID, query: Query) -> tuple[str, dict[str, object]]:
    """The page's statement (named parameters) and its values (bench.cpu runs it in
    pgbench too)."""
    return _sql(dialect, query), _named(query, provider_id)


async def slot_page(engine: AsyncEngine, provider_id: uuid.UUID, query: Query) -> bytes | None:
    """The page as the API's JSON (`{"items": [...], "next_cursor": ...}`), or None when
    the provider does not exist."""
    dialect = engine.dialect.name
    sql, values = statement(dialect, provider_id, query)
    if dialect == "postgresql":
        known, items, found, last_at, last_id = await rawsql.fetch_row(engine, sql, values)
    else:
        _, names = rawsql.positional(sql)
        async with engine.connect() as connection:
            result = await connection.execute(
                text(sql), {name: _sqlite_value(values[name]) for name in names}
            )
            known, items, found, last_at, last_id = result.one()
        if last_at is not None:
            last_at = datetime.fromisoformat(last_at).replace(tzinfo=UTC)
    if not known:
        return None
    more = found > query.request.limit
    return page_body(items, Keyset(at=last_at, id=uuid.UUID(last_id)) if more else None)
