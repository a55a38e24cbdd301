"""Wakes this process's delivery worker when a transaction that wrote events commits.

Without it an event waits for the next poll (up to the delivery interval); with it,
the process that made the change starts delivering it at once. Other processes still
find it on their next poll, so nothing depends on the wake-up arriving.
"""

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_MARK = "wrote_events"
_listeners: set[asyncio.Event] = set()


def mark(session: AsyncSession) -> None:
    """Note that this transaction wrote events (called inside it)."""
    session.sync_session.info[_MARK] = True


def committed() -> None:
    """Events were just committed (by a statement committing by itself, outside any session)."""
    for wake in _listeners:
        wake.set()


def listen() -> asyncio.Event:
    """An event set after each commit of a transaction that wrote events."""
    wake = asyncio.Event()
    _listeners.add(wake)
    return wake


def forget(wake: asyncio.Event) -> None:
    _listeners.discard(wake)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_MARK, False):
        committed()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session, *_: Any) -> None:
    session.info.pop(_MARK, None)
