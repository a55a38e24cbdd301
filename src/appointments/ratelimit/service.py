"""A fixed-window limit: at most `limit` hits per scope per window, counted by one
atomic upsert (INSERT ... ON CONFLICT DO UPDATE ... RETURNING), so concurrent hits
from any number of processes are each counted exactly once."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.db import conflict_insert
from appointments.errors import DomainError
from appointments.ratelimit.models import RateWindow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


async def hit(
    session: AsyncSession, scope: str, now: datetime, *, limit: int, window: timedelta
) -> None:
    """Count one hit of `scope` at `now`; TooManyRequests (with the seconds until the
    window ends) once the window holds more than `limit`."""
    start = _EPOCH + ((now - _EPOCH) // window) * window
    counted = (
        conflict_insert(session, RateWindow)
        .values(scope=scope[:200], window_start=start, hits=1)
        .on_conflict_do_update(
            index_elements=[RateWindow.scope, RateWindow.window_start],
            set_={"hits": RateWindow.hits + 1},
        )
        .returning(RateWindow.hits)
    )
    hits = int((await session.execute(counted)).scalar_one())
    if hits > limit:
        retry_after = max(1, int((start + window - now).total_seconds() + 0.999))
        raise TooManyRequests(
            f"too many attempts from this address; try again in {retry_after} s", retry_after
        )


async def forget_before(session: AsyncSession, moment: datetime) -> None:
    """Drop the windows that started before `moment` (the sweeper's housekeeping)."""
    await session.execute(
        delete(RateWindow)
        .where(RateWindow.window_start < moment)
        .execution_options(synchronize_session=False)
    )
