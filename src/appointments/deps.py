"""Typed FastAPI dependencies shared by every router."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from appointments.clock import Clock
from appointments.db import reading, transaction
from appointments.settings import Settings

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction for what it does through the session: committed before
    the response is sent, or rolled back. A read is `db.reading` (on PostgreSQL, without
    a transaction). The session takes a connection only at its first statement, so the
    one-statement reserve and confirm (PostgreSQL, no key), which commit by themselves
    through `rawsql.fetch_row`, leave it unused and hold one connection, not two."""
    sessionmaker = request.app.state.sessionmaker
    if request.method in _READ_METHODS:
        async with reading(sessionmaker) as session:
            yield session
        return
    async with transaction(sessionmaker, writes=True) as session:
        yield session


# Dependencies are async: FastAPI runs plain `def` ones in a thread pool, a needless hop.
async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_read_engine(request: Request) -> AsyncEngine:
    """For listing reads that are one statement (no session, no transaction): the read
    replica's engine when one is configured, else the primary's."""
    engine: AsyncEngine = request.app.state.read_engine
    return engine


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a listing read, on the read replica when one is configured."""
    async with reading(request.app.state.read_sessionmaker) as session:
        yield session


# scope="function": commit happens before the answer leaves, so a 2xx is always durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ReadEngineDep = Annotated[AsyncEngine, Depends(get_read_engine)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
