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
    """The request's one transaction: committed before the response is sent, or rolled back.
    A read on PostgreSQL runs without one (`db.reading`)."""
    writes = request.method not in _READ_METHODS
    sessionmaker = request.app.state.sessionmaker
    if not writes and request.app.state.engine.dialect.name == "postgresql":
        async with reading(sessionmaker) as session:
            yield session
        return
    async with transaction(sessionmaker, writes=writes) as session:
        yield session


# Dependencies are async: FastAPI runs plain `def` ones in a thread pool, a needless hop.
async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    """For reads that are one statement: no session, no transaction."""
    engine: AsyncEngine = request.app.state.engine
    return engine


# scope="function": commit happens before the answer leaves, so a 2xx is always durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
