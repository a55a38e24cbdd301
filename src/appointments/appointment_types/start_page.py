"""A page of an appointment type's start times on PostgreSQL, as JSON built there.

Statements straight to asyncpg, outside a transaction: the type's terms (with
whether the provider exists, for the right 404), then `start_times.compose_text`'s
search wrapped so that PostgreSQL returns the page's items as JSON text and the
key of its last item for the cursor. SQLite answers the same through the service.

The search is written from the terms, so it needs them first. Each process keeps
the terms it has read, and the search statement checks them: it also returns the
terms as they stand (a fingerprint), and a page made from terms that changed since
(an edited type or provider zone, a deleted type) is thrown away and made again from
fresh ones. So a warm listing is one round trip, and never answers from stale terms.
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

# Everything a page is made from, as one text: equal texts, equal terms.
_FINGERPRINT = """ROW(p.timezone, t.id, t.duration_minutes, t.buffer_before_minutes,
       t.buffer_after_minutes, t.min_notice_minutes, t.max_advance_days, t.max_per_day,
       t.change_notice_minutes, t.capacity)::text"""
_TYPE_OF_PROVIDER = """providers AS p
  {join} appointment_types AS t
    ON t.provider_id = p.id AND t.id = :type_id AND t.deleted_at IS NULL
 WHERE p.id = :provider_id"""
_TERMS = f"""
SELECT p.timezone, t.id, t.duration_minutes, t.buffer_before_minutes,
       t.buffer_after_minutes, t.min_notice_minutes, t.max_advance_days, t.max_per_day,
       t.change_notice_minutes, t.capacity, {_FINGERPRINT} AS fingerprint
  FROM {_TYPE_OF_PROVIDER.format(join="LEFT JOIN")}
"""
_CACHE_SIZE = 10_000

_ITEMS = rawsql.json_array(
    rawsql.json_object(
        [
            ("slot_id", "anchor_id"),
            ("start_time", rawsql.utc_text("anchor_start")),
            ("end_time", rawsql.utc_text("(anchor_start + CAST(:duration AS interval))")),
            ("seats_left", "seats_left"),
        ],
        numbers=frozenset({"seats_left"}),
    ),
    "n",
)
_PAGE = f"""
WITH found AS (%s),
numbered AS (
    SELECT anchor_id, anchor_start, seats_left,
           row_number() OVER (ORDER BY anchor_start) AS n
      FROM found WHERE anchor_id IS NOT NULL
)
SELECT (SELECT {_ITEMS} FROM numbered WHERE n <= :page_size) AS items,
       (SELECT count(*) FROM numbered) AS found,
       (SELECT anchor_start FROM numbered WHERE n = :page_size) AS last_at,
       (SELECT anchor_id::text FROM numbered WHERE n = :page_size) AS last_id,
       (SELECT seats_left FROM found WHERE anchor_id IS NULL) AS checked,
       (SELECT anchor_start FROM found WHERE anchor_id IS NULL) AS checked_to,
       (SELECT {_FINGERPRINT} FROM {_TYPE_OF_PROVIDER.format(join="JOIN")}) AS fingerprint
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
    capacity: int


def statement(
    provider_id: uuid.UUID,
    rules: BookingRules,
    search: start_times.Search,
    now: datetime,
    request: PageRequest,
    *,
    chunk: int | None = None,
) -> tuple[str, dict[str, object]]:
    """The page's statement (named parameters) and its values (bench.cpu runs it in
    pgbench too); for a series, over `chunk` starts."""
    search_sql, values, _ = start_times.compose_text(
        "postgresql",
        provider_id,
        rules,
        search,
        now,
        limit=request.limit + 1,
        cursor=request.after,
        chunk=chunk,
    )
    values |= {"duration": rules.duration, "page_size": request.limit, "type_id": rules.type_id}
    return _PAGE % search_sql, values


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
    repeat: start_times.Repeat | None = None,
) -> bytes:
    """The page as the API's JSON; NotFound for an unknown provider or type."""
    key = (provider_id, type_id)
    known = _known_terms.get(key)
    if known is not None:
        page = await _page(
            engine, settings, provider_id, known, start_from, start_before, now, request, repeat
        )
        if page.fingerprint == known.fingerprint:
            return page.body
        del _known_terms[key]  # the terms changed since they were read: read them again
    row = await rawsql.fetch_row(engine, _TERMS, {"provider_id": provider_id, "type_id": type_id})
    if row is None:
        raise NotFound(f"provider {str(provider_id)!r} does not exist")
    zone, *columns, fingerprint = row
    if columns[0] is None:
        raise NotFound(f"appointment type {str(type_id)!r} does not exist")
    if len(_known_terms) >= _CACHE_SIZE:
        for stale in list(_known_terms)[: _CACHE_SIZE // 2]:
            del _known_terms[stale]
    known = _known_terms[key] = _Known(zone, Terms(*columns), fingerprint)
    # Should the terms change again before the next statement, this page is still as of
    # the terms just read: what the two statements of a cold listing always answered.
    page = await _page(
        engine, settings, provider_id, known, start_from, start_before, now, request, repeat
    )
    return page.body


@dataclass(frozen=True)
class _Known:
    zone: str
    terms: Terms
    fingerprint: str


# (provider, type) -> the terms this process last read, checked by every page.
_known_terms: dict[tuple[uuid.UUID, uuid.UUID], _Known] = {}


@dataclass(frozen=True)
class _Page:
    body: bytes
    fingerprint: str | None  # of the terms as they stand; None: type or provider gone


async def _page(
    engine: AsyncEngine,
    settings: Settings,
    provider_id: uuid.UUID,
    known: _Known,
    start_from: datetime | None,
    start_before: datetime | None,
    now: datetime,
    request: PageRequest,
    repeat: start_times.Repeat | None,
) -> _Page:
    """The page made from `known`, with the fingerprint of the terms as they stand.

    One statement, but for a series page: one per chunk of starts checked
    (`start_times.Chunks`, as `start_times.find` runs them), the chunks' items joined
    as JSON text."""
    rules = BookingRules.of(known.terms, settings)
    search = start_times.search_for(rules, known.zone, start_from, start_before, now, repeat)
    items: list[str] = []
    # One start more than the page holds, to know whether another page follows.
    chunks = start_times.Chunks.of(rules, search, request.limit + 1, request.after)
    last_key: Keyset | None = None
    while True:
        wanted = PageRequest(limit=chunks.wanted - 1, after=chunks.after)
        sql, values = statement(provider_id, rules, search, now, wanted, chunk=chunks.size)
        row = await rawsql.fetch_row(engine, sql, values)
        found_items, found, last_at, last_id, checked, checked_to, fingerprint = row
        if found and wanted.limit:
            items.append(found_items[1:-1])  # the array's elements, without its brackets
        if last_id is not None:  # this round's last item on the page
            last_key = Keyset(at=last_at, id=uuid.UUID(last_id))
        if fingerprint is None or not chunks.go_on(found, checked, checked_to):
            # A round with room for none only looks ahead.
            next_key = last_key if found > wanted.limit else None
            body = page_body("[" + ",".join(items) + "]", next_key)
            return _Page(body, fingerprint)
