"""A page of an appointment type's start times on PostgreSQL, as JSON built there.

Two statements straight to asyncpg, outside a transaction: the type's terms (with
whether the provider exists, for the right 404), then `start_times.compose`'s
search wrapped so that PostgreSQL returns the page's items as JSON text and the
key of its last item for the cursor. SQLite answers the same through the service.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from appointments import rawsql
from appointments.appointment_types import start_times
from appointments.appointment_types.rules import BookingRules
from appointments.errors import NotFound
from appointments.pagination import Keyset, PageRequest, page_body
from appointments.settings import Settings

_TERMS = """
SELECT p.timezone, t.id, t.duration_minutes, t.buffer_before_minutes,
       t.buffer_after_minutes, t.min_notice_minutes, t.max_advance_days, t.max_per_day,
       t.change_notice_minutes
  FROM providers AS p
  LEFT JOIN appointment_types AS t
    ON t.provider_id = p.id AND t.id = :type_id AND t.deleted_at IS NULL
 WHERE p.id = :provider_id
"""

_ITEMS = rawsql.json_array(
    rawsql.json_object(
        [
            ("slot_id", "anchor_id"),
            ("start_time", rawsql.utc_text("anchor_start")),
            ("end_time", rawsql.utc_text("(anchor_start + CAST(:duration AS interval))")),
        ]
    ),
    "n",
)
_PAGE = f"""
WITH found AS (%s),
numbered AS (
    SELECT anchor_id, anchor_start, row_number() OVER (ORDER BY anchor_start) AS n FROM found
)
SELECT (SELECT {_ITEMS} FROM numbered WHERE n <= :page_size) AS items,
       (SELECT count(*) FROM numbered) AS found,
       (SELECT anchor_start FROM numbered WHERE n = :page_size) AS last_at,
       (SELECT anchor_id::text FROM numbered WHERE n = :page_size) AS last_id
"""


@dataclass(frozen=True)
class Terms:
    """The columns of a type that its booking rules are made of."""

    id: uuid.UUID
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int | None
    max_advance_days: int | None
    max_per_day: int | None
    change_notice_minutes: int


def statement(
    provider_id: uuid.UUID,
    rules: BookingRules,
    search: start_times.Search,
    now: datetime,
    request: PageRequest,
) -> tuple[str, dict[str, object]]:
    """The page's statement (named parameters) and its values (bench.cpu runs it in
    pgbench too)."""
    search_statement, values = start_times.compose(
        "postgresql", provider_id, rules, search, now, limit=request.limit + 1, cursor=request.after
    )
    values |= {"duration": rules.duration, "page_size": request.limit}
    return _PAGE % search_statement.element.text, values


async def page_json(
    engine: AsyncEngine,
    settings: Settings,
    provider_id: uuid.UUID,
    type_id: uuid.UUID,
    *,
    start_from: datetime | None,
    start_before: datetime | None,
    now: datetime,
    request: PageRequest,
) -> bytes:
    """The page as the API's JSON; NotFound for an unknown provider or type."""
    row = await rawsql.fetch_row(engine, _TERMS, {"provider_id": provider_id, "type_id": type_id})
    if row is None:
        raise NotFound(f"provider {str(provider_id)!r} does not exist")
    zone, *columns = row
    if columns[0] is None:
        raise NotFound(f"appointment type {str(type_id)!r} does not exist")
    rules = BookingRules.of(Terms(*columns), settings)
    search = start_times.search_for(rules, zone, start_from, start_before, now)
    sql, values = statement(provider_id, rules, search, now, request)
    items, found, last_at, last_id = await rawsql.fetch_row(engine, sql, values)
    more = found > request.limit
    return page_body(items, Keyset(at=last_at, id=uuid.UUID(last_id)) if more else None)
