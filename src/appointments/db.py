"""Engine, declarative base, the UTC time column type, and the one-transaction session."""

import asyncio
import enum
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from sqlalchemy import DateTime, Index, MetaData, PrimaryKeyConstraint, Select, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from appointments.connections import Connections, behind_pgbouncer, engine_options
from appointments.settings import Settings

logger = logging.getLogger(__name__)

# Stable constraint names on both databases, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


RowT = TypeVar("RowT", bound=tuple[Any, ...])


class RowLock(enum.Enum):
    """How a row read for a write stays locked until the transaction ends (PostgreSQL;
    SQLite's writers are serialised by BEGIN IMMEDIATE). Without one, a row read by a
    write can be deleted by a concurrent transaction before the write lands, which then
    updates nothing or inserts a child whose parent is gone."""

    # FOR KEY SHARE: the row cannot be deleted (or its key changed) meanwhile; other
    # writers of it, and other keepers, go on. For writes that only depend on the row.
    KEEP = "keep"
    # FOR NO KEY UPDATE: writers of the row run one at a time; inserts that reference
    # it (their foreign-key check takes KEY SHARE) still go on, which FOR UPDATE would
    # block, and a transaction holding a slot lock would deadlock with us.
    EDIT = "edit"

    @property
    def options(self) -> dict[str, bool]:
        """The row lock as SQLAlchemy's `with_for_update` flags."""
        read, key_share = _ROW_LOCK_FLAGS[self]
        return {"read": read, "key_share": key_share}

    def on(self, query: Select[RowT]) -> Select[RowT]:
        """The query, its rows locked so (and read afresh into the session's objects)."""
        read, key_share = _ROW_LOCK_FLAGS[self]
        locked = query.with_for_update(read=read, key_share=key_share)
        return locked.execution_options(populate_existing=True)


# (read, key_share) of `with_for_update`.
_ROW_LOCK_FLAGS = {
    RowLock.KEEP: (True, True),
    RowLock.EDIT: (False, True),
}


def conflict_insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT into `table` in the session's dialect, so ON CONFLICT clauses can follow."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def violates(exc: BaseException, index: Index | PrimaryKeyConstraint) -> bool:
    """True when `exc` is the database refusing a row because of the unique `index`.

    PostgreSQL names the index (asyncpg's `constraint_name`, raised straight or under
    SQLAlchemy's wrapper); SQLite names only the table's columns, in index order.
    """
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    for candidate in (cause, getattr(cause, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name is not None:
            return bool(name == index.name)
    table = index.table
    if table is None:
        return False
    columns = ", ".join(f"{table.name}.{column.name}" for column in index.columns)
    return str(cause) == f"UNIQUE constraint failed: {columns}"


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database.

    PostgreSQL keeps `timestamptz`; SQLite has no time type, so values are stored
    as naive UTC text in one fixed format, which keeps string comparison in SQL
    equal to time comparison.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached the database layer")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def hosts_as_query(url: str) -> str:
    """libpq's multi-host form `postgresql://u:p@h1:5432,h2:5433/db?...` in SQLAlchemy's:
    `postgresql://u:p@/db?host=h1:5432&host=h2:5433&...` (every host needs its port)."""
    parts = urlsplit(url)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if "," not in hostlist:
        return url
    hosts = [host if ":" in host else f"{host}:5432" for host in hostlist.split(",")]
    query = "&".join([*(f"host={host}" for host in hosts), *([parts.query] if parts.query else [])])
    # Not urlunsplit: it drops the "//" when nothing is left before the path.
    return f"{parts.scheme}://{userinfo}{at}{parts.path}?{query}"


def async_database_url(url: str) -> str:
    """Turn the user's URL (`sqlite:///x.db`, `postgresql://...`) into an async driver URL.

    A PostgreSQL URL may name several hosts (`h1:p1,h2:p2`) with
    `target_session_attrs=read-write`: asyncpg then connects to whichever is the
    primary, so the service follows a failover by itself."""
    parsed = make_url(hosts_as_query(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def create_engine(
    settings: Settings,
    *,
    enforce_foreign_keys: bool = True,
    url: str | None = None,
    name: str = "appointments",
) -> AsyncEngine:
    """The engine for the configured database (or for `url`, e.g. the read replica's).

    `enforce_foreign_keys=False` is for migrations only: SQLite rebuilds a table to
    alter it, and dropping the old copy with foreign keys on would cascade-delete
    every row that references it.
    """
    url = async_database_url(url or settings.database_url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        _configure_sqlite(engine, enforce_foreign_keys)
        return engine
    connections = Connections(settings, name)
    engine = create_async_engine(url, **engine_options(connections))
    connections.bind(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine, enforce_foreign_keys: bool) -> None:
    # pysqlite's own transaction handling defers BEGIN and ignores the mode; take it over
    # so that writing transactions start with BEGIN IMMEDIATE. A deferred transaction that
    # reads and then writes fails at once with SQLITE_BUSY when another connection wrote
    # in between; IMMEDIATE takes the write lock up front and waits (busy_timeout) instead.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enforce_foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        for name, function in (("tz_day_start", _tz_day_start), ("tz_day_end", _tz_day_end)):
            dbapi_connection.create_function(name, 2, function, deterministic=True)
        dbapi_connection.create_function("tz_weeks_later", 3, _tz_weeks_later, deterministic=True)
        dbapi_connection.create_function("time_plus", 2, _time_plus, deterministic=True)
        # PostgreSQL's built-in, in SQLAlchemy's SQLite form of a UUID (32 hex digits).
        dbapi_connection.create_function("gen_random_uuid", 0, _random_uuid)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writing = connection.get_execution_options().get("writes", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


# SQLite stores times as naive UTC text in this format (see UTCDateTime).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _from_stored(stored: str) -> datetime:
    """SQLite's stored form (`_SQLITE_TIME`) read, naive. `fromisoformat` reads it at
    ~1/30 of `strptime`'s cost, which a series' start-time search pays per occurrence."""
    return datetime.fromisoformat(stored)


def sqlite_time(moment: datetime) -> str:
    """A time in SQLite's stored form (`_SQLITE_TIME`), for statements that pass times as
    text (JSON rows, registered functions): an aware time converted to UTC, a naive one
    taken as UTC; as `isoformat` writes it (cheaper than `strftime`, the same text)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _local_midnight(stored: str | None, zone: str | None, days: int) -> str | None:
    """Local midnight (plus `days`) of a stored UTC time's day in the zone, stored form.

    SQLite knows no time zones; these functions give its queries the provider's
    calendar days, as `AT TIME ZONE` does on PostgreSQL.
    """
    if stored is None or zone is None:
        return None
    try:
        tz = ZoneInfo(zone)
        moment = _from_stored(stored).replace(tzinfo=UTC)
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        return None
    day = moment.astimezone(tz).date() + timedelta(days=days)
    midnight = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
    return sqlite_time(midnight)


def wall_clock_weeks_later(moment: datetime, zone: str, weeks: int) -> datetime | None:
    """The same wall-clock time in the zone, whole weeks after `moment` (UTC), or None
    where that time does not exist that day (a spring-forward gap). In a fall-back
    day's repeated hour: the later instant (standard time), as PostgreSQL reads an
    ambiguous local time. `scheduling.rules.weeks_later`'s Python side, and SQLite's."""
    tz = ZoneInfo(zone)
    wall = moment.astimezone(tz).replace(tzinfo=None) + timedelta(weeks=weeks)
    aware = wall.replace(tzinfo=tz, fold=1)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return aware.astimezone(UTC)


def _tz_weeks_later(stored: str | None, zone: str | None, weeks: int | None) -> str | None:
    """`wall_clock_weeks_later` on SQLite's stored form (SQLite knows no zones)."""
    if stored is None or zone is None or weeks is None:
        return None
    try:
        moment = _from_stored(stored).replace(tzinfo=UTC)
        later = wall_clock_weeks_later(moment, zone, weeks)
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        return None
    return None if later is None else sqlite_time(later)


def _time_plus(stored: str | None, seconds: float | None) -> str | None:
    """A stored time moved by `seconds`, in the stored form, so that a query can compare
    it with a column as text, by the column's index (SQLite's own `datetime()` writes
    another form, which does not compare as text; `unixepoch(column)` reads every row)."""
    if stored is None or seconds is None:
        return None
    try:
        moment = _from_stored(stored)
    except ValueError:
        return None
    return sqlite_time(moment + timedelta(seconds=seconds))


def _random_uuid() -> str:
    return uuid.uuid4().hex


def _tz_day_start(stored: str | None, zone: str | None) -> str | None:
    return _local_midnight(stored, zone, 0)


def _tz_day_end(stored: str | None, zone: str | None) -> str | None:
    return _local_midnight(stored, zone, 1)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


_Options = tuple[tuple[str, object], ...]
_views: "weakref.WeakKeyDictionary[AsyncEngine, dict[_Options, AsyncEngine]]"
_views = weakref.WeakKeyDictionary()


def _with_options(engine: AsyncEngine, **options: object) -> AsyncEngine:
    """The engine with these execution options on every connection it hands out (made
    once per engine and options; it shares the engine's pool)."""
    views = _views.setdefault(engine, {})
    key: _Options = tuple(sorted(options.items()))
    view = views.get(key)
    if view is None:
        view = views[key] = engine.execution_options(**options)
    return view


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession], *, writes: bool
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block succeeds, roll back on any exception.

    The session takes its connection at its first statement, not before: a request
    that ends up writing with one statement on its own (`rawsql.fetch_row`) never
    holds a session's connection beside it from the same pool."""
    engine: AsyncEngine = sessionmaker.kw["bind"]
    # The option only changes how SQLite begins; PostgreSQL ignores it.
    async with sessionmaker(bind=_with_options(engine, writes=writes)) as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


@asynccontextmanager
async def reading(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A read-only unit of work. On PostgreSQL each statement runs on its own
    (autocommit), which spares the BEGIN and COMMIT round trips: each statement is
    consistent in itself, and two statements of one read may see different moments,
    which a read can afford (it answers as of one of them). Elsewhere a read
    transaction: SQLite's BEGIN is issued by an event on autobegin, which autocommit
    would leave open; behind PgBouncer a statement outside a transaction may be parsed
    on one server connection and executed on another."""
    engine: AsyncEngine = sessionmaker.kw["bind"]
    if engine.dialect.name != "postgresql" or behind_pgbouncer(engine):
        async with transaction(sessionmaker, writes=False) as session:
            yield session
        return
    async with sessionmaker(bind=_with_options(engine, isolation_level="AUTOCOMMIT")) as session:
        yield session


async def wait_for_database(settings: Settings) -> None:
    """Return once the database answers; retry with backoff for `db_wait_seconds`.

    A container may start before its database; waiting a bounded time (then
    failing loudly) beats crash-looping or serving 503s from the first second.
    """
    deadline = time.monotonic() + settings.db_wait_seconds
    delay = 0.25
    engine = create_engine(settings)
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await connection.exec_driver_sql("SELECT 1")
                return
            except (OSError, DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if time.monotonic() + delay > deadline:
                    raise
                logger.warning("database not reachable yet; retrying in %.2fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)
    finally:
        await engine.dispose()
